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

import contextlib
import logging
from collections.abc import Iterator, Sequence

from flatnet import exception
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
from flatnet.service.settings import (
    IngestPolicy as IngestPolicy,  # noqa: PLC0414
)

LOG = logging.getLogger(__name__)


@contextlib.contextmanager
def _journal_errors(path: str) -> Iterator[None]:
    """The one seam where the journal executor's OSError becomes a
    HostNetworkError naming the journal."""
    try:
        yield
    except OSError as exc:
        raise exception.HostNetworkError(
            f"journal {path}: {exc.strerror or exc}", reason=str(exc)
        ) from exc


def _stored_offset(
    db: db_api.Database, keys: Sequence[str], inode: int, host: str
) -> int:
    """Offset recorded for ``inode`` under any of ``keys`` (else 0).

    Looking at both keys covers a crash between a rotation's rename and
    the recording of the rotated file's offset.
    """
    for key in keys:
        stored = db_api.journal_offset(db, key, host=host)
        if stored is not None and stored[0] == inode:
            return stored[1]
    return 0


def _ingest_file(
    db: db_api.Database,
    path: str,
    keys: Sequence[str],
    policy: IngestPolicy,
    host: str,
) -> journal.JournalChunk | None:
    inode = journal.journal_inode(path)
    if inode is None:
        return None
    offset = _stored_offset(db, keys, inode, host)
    chunk = journal.read_chunk(path, offset, policy.max_bytes)
    if chunk is None or (chunk.end == offset and chunk.start == offset):
        return chunk
    events = [e for e in map(parse_line, chunk.lines) if e is not None]
    invalid = len(chunk.lines) - len(events)
    if invalid:
        LOG.warning(
            "journal %s: %d invalid or torn lines skipped (counted in the "
            "database, lease_journals.invalid_lines)",
            path,
            invalid,
        )
    db_api.apply_lease_events(
        db, path, chunk.inode, chunk.end, events, host=host, invalid=invalid
    )
    return chunk


def ingest_journal(
    db: db_api.Database,
    path: str,
    policy: IngestPolicy | None = None,
    host: str = "",
) -> int:
    """Apply new complete lines of ``path`` (and ``path.old``), with the
    offsets recorded under ``host`` (several hosts may share one
    database and the same ``networks_path``).

    Returns the number of bytes consumed. Rotates ``path`` once it is
    consumed and larger than ``policy.rotate_bytes``; deletes a consumed
    ``.old`` that no writer touched for ``policy.old_grace`` seconds.
    Raises HostNetworkError if a journal cannot be read or rotated.
    """
    policy = policy or IngestPolicy()
    with _journal_errors(path):
        return _ingest(db, path, policy, host)


def _ingest(
    db: db_api.Database, path: str, policy: IngestPolicy, host: str
) -> int:
    old = path + journal.OLD_SUFFIX
    keys = (path, old)
    consumed = 0
    old_chunk = _ingest_file(db, old, keys, policy, host)
    if old_chunk is not None:
        consumed += old_chunk.end - old_chunk.start
        idle = journal.age(old) or 0.0
        if old_chunk.end == old_chunk.size and idle > policy.old_grace:
            journal.delete(old)
            db_api.apply_lease_events(db, old, 0, 0, [], host=host)
    chunk = _ingest_file(db, path, keys, policy, host)
    if chunk is None:
        return consumed
    consumed += chunk.end - chunk.start
    if chunk.end == chunk.size and chunk.size > policy.rotate_bytes:
        inode = journal.rotate(path)
        if inode is not None:
            db_api.apply_lease_events(db, old, inode, chunk.end, [], host=host)
            db_api.apply_lease_events(db, path, 0, 0, [], host=host)
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
