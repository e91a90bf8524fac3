"""Source address -> instance metadata, cached in front of a slow lookup.

The injected ``lookup(ip)`` may block (a database query), so it runs in
a thread executor. The cache keeps, per source address, the built
:class:`~flatnet.plan.metadata.MetadataTree` (or ``None``: no instance
has this address) for ``ttl`` seconds (``negative_ttl`` for ``None``).
Concurrent requests from one address share one lookup (a boot's burst
of ~28 requests costs one query). ``invalidate()`` (called when the
database's generation moves) drops everything; a lookup that was in
flight when it happened is not stored, so no stale answer survives an
invalidation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Mapping
from typing import Any

from flatnet.plan.metadata import InstanceMetadata, MetadataTree
from flatnet.service.settings import (
    CacheSettings as CacheSettings,  # noqa: PLC0414
)

Lookup = Callable[[str], InstanceMetadata | None]


class InstanceCache:
    """TTL + generation cache with one lookup in flight per address."""

    def __init__(
        self,
        lookup: Lookup,
        executor: concurrent.futures.Executor,
        settings: CacheSettings,
        vendor_data: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._executor = executor
        self._settings = settings
        self._vendor_data = vendor_data
        self._clock = clock
        self._entries: dict[str, tuple[float, MetadataTree | None]] = {}
        self._pending: dict[str, asyncio.Future[MetadataTree | None]] = {}
        self._epoch = 0
        self.lookups = 0

    def peek(self, ip: str) -> tuple[bool, MetadataTree | None]:
        """(True, value) on a fresh hit, (False, None) otherwise."""
        entry = self._entries.get(ip)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def invalidate(self) -> None:
        """Forget everything, including lookups now in flight."""
        self._epoch += 1
        self._entries.clear()
        self._pending.clear()

    def _load(self, ip: str) -> MetadataTree | None:
        md = self._lookup(ip)
        return None if md is None else MetadataTree(md, self._vendor_data)

    async def get(self, ip: str) -> MetadataTree | None:
        """The tree for ``ip``; raises what the lookup raised."""
        hit, value = self.peek(ip)
        if hit:
            return value
        pending = self._pending.get(ip)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        epoch = self._epoch
        future = loop.run_in_executor(self._executor, self._load, ip)
        self._pending[ip] = future
        self.lookups += 1
        try:
            value = await asyncio.shield(future)
        finally:
            if self._pending.get(ip) is future:
                del self._pending[ip]
        if epoch == self._epoch:
            self._store(ip, value)
        return value

    def _store(self, ip: str, value: MetadataTree | None) -> None:
        if len(self._entries) >= self._settings.max_entries:
            now = self._clock()
            for key in [k for k, e in self._entries.items() if e[0] <= now]:
                del self._entries[key]
            while len(self._entries) >= self._settings.max_entries:
                del self._entries[next(iter(self._entries))]
        ok = value is not None
        ttl = self._settings.ttl if ok else self._settings.negative_ttl
        self._entries[ip] = (self._clock() + ttl, value)
