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
import dataclasses
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
from flatnet.service.troubles import Troubles

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


Offsets = dict[str, tuple[int, int]]


def _stored_offset(offsets: Offsets, keys: Sequence[str], inode: int) -> int:
    """Offset recorded for ``inode`` under any of ``keys`` (else 0).

    Looking at both keys covers a crash between a rotation's rename and
    the recording of the rotated file's offset.
    """
    for key in keys:
        stored = offsets.get(key)
        if stored is not None and stored[0] == inode:
            return stored[1]
    return 0


def _read_file(
    path: str, keys: Sequence[str], offsets: Offsets, policy: IngestPolicy
) -> tuple[journal.JournalChunk | None, db_api.JournalBatch | None]:
    """The chunk of ``path`` past its offset, and the batch to apply
    (None when there is nothing new)."""
    inode = journal.journal_inode(path)
    if inode is None:
        return None, None
    offset = _stored_offset(offsets, keys, inode)
    chunk = journal.read_chunk(path, offset, policy.max_bytes)
    if chunk is None or (chunk.end == offset and chunk.start == offset):
        return chunk, None
    events = [e for e in map(parse_line, chunk.lines) if e is not None]
    invalid = len(chunk.lines) - len(events)
    if invalid:
        LOG.warning(
            "journal %s: %d invalid or torn lines skipped (counted in the "
            "database, lease_journals.invalid_lines)",
            path,
            invalid,
        )
    batch = db_api.JournalBatch(path, chunk.inode, chunk.end, events, invalid)
    return chunk, batch


@dataclasses.dataclass(slots=True)
class _Read:
    """What one journal (and its rotated ``.old``) held past its offsets."""

    path: str
    old: journal.JournalChunk | None = None
    new: journal.JournalChunk | None = None
    batches: list[db_api.JournalBatch] = dataclasses.field(
        default_factory=list
    )


def _read(path: str, offsets: Offsets, policy: IngestPolicy) -> _Read:
    old = path + journal.OLD_SUFFIX
    keys = (path, old)
    found = _Read(path)
    found.old, batch = _read_file(old, keys, offsets, policy)
    found.batches += [batch] if batch else []
    found.new, batch = _read_file(path, keys, offsets, policy)
    found.batches += [batch] if batch else []
    return found


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
    consumed, failed = ingest_journals(db, [path], policy, host)
    if failed:
        raise failed[path]
    return consumed[path]


def ingest_journals(
    db: db_api.Database,
    paths: Sequence[str],
    policy: IngestPolicy | None = None,
    host: str = "",
) -> tuple[dict[str, int], dict[str, exception.HostNetworkError]]:
    """:func:`ingest_journal` for several journals (a sharded network's)
    with one read of the offsets and ONE transaction for all their
    events and offsets: a poll costs one commit, not one per journal.

    Returns the bytes consumed per journal read and the journals that
    could not be read or rotated (their error; the others are ingested).
    """
    policy = policy or IngestPolicy()
    offsets = db_api.journal_offsets(db, host)
    reads: list[_Read] = []
    failed: dict[str, exception.HostNetworkError] = {}
    for path in paths:
        try:
            with _journal_errors(path):
                reads.append(_read(path, offsets, policy))
        except exception.HostNetworkError as exc:
            failed[path] = exc
    batches = [b for r in reads for b in r.batches]
    if batches:
        db_api.apply_lease_journals(db, batches, host=host)
    consumed: dict[str, int] = {}
    for read in reads:
        try:
            with _journal_errors(read.path):
                consumed[read.path] = _tidy(db, read, policy, host)
        except exception.HostNetworkError as exc:
            failed[read.path] = exc
    return consumed, failed


def ingest_reported(
    db: db_api.Database,
    paths: Sequence[str],
    policy: IngestPolicy,
    host: str,
    troubles: Troubles,
) -> dict[str, int | None]:
    """:func:`ingest_journals`, each journal's failure (or recovery)
    reported to ``troubles`` as ``dhcp ingest <path>``; bytes consumed
    per journal (None: it failed)."""
    done, failed = ingest_journals(db, paths, policy, host)
    result: dict[str, int | None] = {}
    for path in paths:
        if path in failed:
            troubles.failed(f"dhcp ingest {path}", failed[path])
            result[path] = None
        else:
            troubles.ok(f"dhcp ingest {path}")
            result[path] = done.get(path, 0)
    return result


def _tidy(
    db: db_api.Database, read: _Read, policy: IngestPolicy, host: str
) -> int:
    """After the commit: delete a consumed, idle ``.old``; rotate a
    consumed journal past ``rotate_bytes``. Returns bytes consumed."""
    path, consumed = read.path, 0
    old = path + journal.OLD_SUFFIX
    if read.old is not None:
        consumed += read.old.end - read.old.start
        idle = journal.age(old) or 0.0
        if read.old.end == read.old.size and idle > policy.old_grace:
            journal.delete(old)
            db_api.apply_lease_events(db, old, 0, 0, [], host=host)
    chunk = read.new
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
    "ingest_journals",
    "ingest_reported",
    "init_text",
    "parse_event",
    "parse_line",
    "record_event",
]
