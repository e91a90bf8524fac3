"""Lease events from dnsmasq's hook: parse, journal, ingest, ``init``.

Both hooks (the sh fast path and the Python ``flatnet-dhcpbridge``)
append ``<action> <mac> <ip>`` lines to a per-network journal. The
daemon ingests each journal with :func:`ingest_journal`: events and the
new offset are committed in one transaction
(:func:`flatnet.db.api.apply_lease_events`), so every line takes effect
exactly once, across crashes and restarts.

Semantics (nova cmd/dhcpbridge.py, network manager lease_fixed_ip and
release_fixed_ip): ``add`` and ``old`` mark the address leased
(``old`` is NOT dropped as nova dhcpbridge did: a confirmation heals an
``add`` lost in a SIGHUP); ``del`` is nova's ``release_fixed_ip`` with the
MAC-owner check. ``init`` prints the network's leased addresses.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from flatnet.db import api as db_api
from flatnet.linux import journal
from flatnet.plan import dnsmasq as plan
from flatnet.service.lease_events import (
    ACTIONS,
    event_line,
    parse_event,
    parse_line,
    record_event,
)

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class IngestPolicy:
    """When to rotate a consumed journal and drop the rotated one."""

    rotate_bytes: int = 16 << 20
    old_grace: float = 5.0
    max_bytes: int = 1 << 20


def _stored_offset(
    db: db_api.Database, keys: Sequence[str], inode: int
) -> int:
    """Offset recorded for ``inode`` under any of ``keys`` (else 0).

    Looking at both keys covers a crash between a rotation's rename and
    the recording of the rotated file's offset.
    """
    for key in keys:
        stored = db_api.journal_offset(db, key)
        if stored is not None and stored[0] == inode:
            return stored[1]
    return 0


def _ingest_file(
    db: db_api.Database,
    path: str,
    key: str,
    keys: Sequence[str],
    policy: IngestPolicy,
) -> journal.JournalChunk | None:
    inode = journal.journal_inode(path)
    if inode is None:
        return None
    offset = _stored_offset(db, keys, inode)
    chunk = journal.read_chunk(path, offset, policy.max_bytes)
    if chunk is None or (chunk.end == offset and chunk.start == offset):
        return chunk
    events = [e for e in map(parse_line, chunk.lines) if e is not None]
    if len(events) != len(chunk.lines):
        LOG.warning(
            "journal %s: %d malformed lines skipped",
            path,
            len(chunk.lines) - len(events),
        )
    db_api.apply_lease_events(db, key, chunk.inode, chunk.end, events)
    return chunk


def ingest_journal(
    db: db_api.Database, path: str, policy: IngestPolicy | None = None
) -> int:
    """Apply new complete lines of ``path`` (and ``path.old``).

    Returns the number of bytes consumed. Rotates ``path`` once it is
    consumed and larger than ``policy.rotate_bytes``; deletes a consumed
    ``.old`` that no writer touched for ``policy.old_grace`` seconds.
    """
    policy = policy or IngestPolicy()
    old = path + journal.OLD_SUFFIX
    keys = (path, old)
    consumed = 0
    old_chunk = _ingest_file(db, old, old, keys, policy)
    if old_chunk is not None:
        consumed += old_chunk.end - old_chunk.start
        idle = journal.age(old) or 0.0
        if old_chunk.end == old_chunk.size and idle > policy.old_grace:
            journal.delete(old)
            db_api.apply_lease_events(db, old, 0, 0, [])
    chunk = _ingest_file(db, path, path, keys, policy)
    if chunk is None:
        return consumed
    consumed += chunk.end - chunk.start
    if chunk.end == chunk.size and chunk.size > policy.rotate_bytes:
        inode = journal.rotate(path)
        if inode is not None:
            db_api.apply_lease_events(db, old, inode, chunk.end, [])
            db_api.apply_lease_events(db, path, 0, 0, [])
    return consumed


def init_text(
    db: db_api.Database, network_id: int, lease_time: int, now: int
) -> str:
    """dnsmasq ``init`` output: every leased address of the network,
    allocated or not (LP 1300355), so a restarted dnsmasq NAKs nobody."""
    return plan.leases_text(db_api.leases(db, network_id), now, lease_time)


__all__ = [
    "ACTIONS",
    "IngestPolicy",
    "event_line",
    "ingest_journal",
    "init_text",
    "parse_event",
    "parse_line",
    "record_event",
]
