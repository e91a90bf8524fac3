"""The flatnet-network loop: poll the database, reconcile what changed.

Every ``sync_interval`` the daemon reads ``network_generations()`` (one
cheap query) and asks every reconciler to ``poll()`` (journals, process
liveness). Networks whose generation moved, or that a reconciler
reported, are reconciled from one fresh ``network_list()`` snapshot;
many allocations between two polls cost one reconcile. After a
reconciler reports a network live, the snapshot's generation is recorded
with ``host_state_set(host, network, component, generation)``, which is
what ``wait_ready`` waits for. Every ``periodic_interval`` stale fixed
IPs are disassociated (nova ``_disassociate_stale_fixed_ips``).

A failing reconcile is logged once with its traceback and retried with
a growing delay (at most ``max_backoff``); other networks go on.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.model import Network

LOG = logging.getLogger(__name__)


class Reconciler(Protocol):
    """A part of the host kept in line with the database."""

    component: str

    def prepare(self) -> None: ...
    def close(self) -> None: ...
    def sync_network(self, network: Network) -> bool: ...
    def poll(self) -> set[int]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class DaemonTiming:
    sync_interval: float = 0.1
    periodic_interval: float = 60.0
    disassociate_timeout: float = 600.0
    max_backoff: float = 30.0


class Daemon:
    """Runs the reconcilers of one host until stopped."""

    def __init__(
        self,
        db: db_api.Database,
        host: str,
        reconcilers: Sequence[Reconciler],
        timing: DaemonTiming | None = None,
    ) -> None:
        self.db = db
        self.host = host
        self.reconcilers = list(reconcilers)
        self.timing = timing or DaemonTiming()
        self.clock: Callable[[], float] = time.monotonic
        self._applied: dict[tuple[str, int], int] = {}
        self._retry: dict[tuple[str, int], tuple[float, float]] = {}
        self._next_periodic = 0.0

    def _due(self, key: tuple[str, int], now: float) -> bool:
        return key not in self._retry or now >= self._retry[key][0]

    def _failed(self, key: tuple[str, int], now: float) -> None:
        delay = self._retry.get(key, (0.0, 0.05))[1]
        delay = min(delay * 2, self.timing.max_backoff)
        self._retry[key] = (now + delay, delay)

    def _todo(self, generations: dict[int, int]) -> set[tuple[str, int]]:
        todo: set[tuple[str, int]] = set()
        now = self.clock()
        for rec in self.reconcilers:
            dirty = rec.poll()
            for network_id, generation in generations.items():
                key = (rec.component, network_id)
                stale = self._applied.get(key) != generation
                if (stale or network_id in dirty) and self._due(key, now):
                    todo.add(key)
        return todo

    def _reconcile(self, rec: Reconciler, network: Network) -> None:
        key = (rec.component, network.id)
        try:
            live = rec.sync_network(network)
        except exception.FlatnetError:
            LOG.exception(
                "%s of network %s failed; will retry",
                rec.component,
                network.id,
            )
            self._failed(key, self.clock())
            return
        self._retry.pop(key, None)
        if not live:
            LOG.warning(
                "%s of network %s not live yet", rec.component, network.id
            )
            self._failed(key, self.clock())
            return
        self._applied[key] = network.generation
        db_api.host_state_set(
            self.db, self.host, network.id, rec.component, network.generation
        )

    def run_once(self) -> int:
        """One loop iteration; returns how many reconciles ran."""
        todo = self._todo(db_api.network_generations(self.db))
        if todo:
            networks = {n.id: n for n in db_api.network_list(self.db)}
            for rec in self.reconcilers:
                for network_id in sorted(networks):
                    if (rec.component, network_id) in todo:
                        self._reconcile(rec, networks[network_id])
        self._periodic()
        return len(todo)

    def _periodic(self) -> None:
        now = self.clock()
        if now < self._next_periodic:
            return
        self._next_periodic = now + self.timing.periodic_interval
        older = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
            seconds=self.timing.disassociate_timeout
        )
        db_api.disassociate_stale_fixed_ips(self.db, self.host, older)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set (SIGTERM in cmd/network.py)."""
        for rec in self.reconcilers:
            rec.prepare()
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                except Exception:  # noqa: BLE001 - keep serving; logged
                    LOG.exception("loop iteration failed; retrying")
                stop.wait(self.timing.sync_interval)
        finally:
            for rec in self.reconcilers:
                rec.close()
