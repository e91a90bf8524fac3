"""A poll's lease events applied in one pass (nova network manager
lease_fixed_ip / release_fixed_ip, as in :mod:`flatnet.db.leases`).

Private to :mod:`flatnet.db`. The rows of every address (and the owners
of every released MAC) are read with a few ``IN`` queries, the events
are played IN ORDER on those rows in memory, with exactly the rules of
:func:`flatnet.db.leases.lease` and :func:`flatnet.db.leases.release`,
and the changed rows are written with one ``UPDATE ... WHERE id IN``
per outcome (leased or not, disassociated or not; they share
``updated_at``). The result equals
applying the events one by one (unit-tested), at a few queries per poll
instead of two or three per event. Warnings are counted per kind, one
line per poll each, with the last address as example.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import netaddr
from sqlalchemy import Connection, select, update

from flatnet import mac as macs
from flatnet import model
from flatnet.db import rows
from flatnet.db.rows import FIXED, VIFS

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
_CHUNK = 500  # bound parameters per IN query (SQLite's limit is higher)
_NOTES = {
    "lease_unassociated": "leased that is not associated",
    "lease_other_mac": "leased by a MAC that is not its VIF's; ignored",
    "lease_unallocated": "leased that isn't allocated",
    "release_unassociated": "released that is not associated",
    "release_unleased": "released that was not leased",
    "release_kept": "not disassociated on release: its MAC now belongs "
    "to another instance",
}


@dataclasses.dataclass(slots=True)
class _Row:
    """The columns the lease rules read and write, of one fixed IP."""

    id: int
    instance_uuid: str | None
    allocated: bool
    leased: bool
    mac: int | None  # the VIF's MAC as an integer (compared, not shown)
    changed: bool = False
    disassociated: bool = False


def _chunks(items: Sequence[_T]) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _load_rows(conn: Connection, addresses: Sequence[str]) -> dict[str, _Row]:
    found: dict[str, _Row] = {}
    for part in _chunks(addresses):
        query = (
            select(
                FIXED.c.id,
                FIXED.c.address,
                FIXED.c.instance_uuid,
                FIXED.c.allocated,
                FIXED.c.leased,
                VIFS.c.address.label("mac"),
            )
            .outerjoin(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
            .where(FIXED.c.address.in_(part), FIXED.c.deleted == 0)
        )
        for r in conn.execute(query):
            mac = None if r.mac is None else _mac_value(r.mac)
            found[r.address] = _Row(
                r.id, r.instance_uuid, bool(r.allocated), bool(r.leased), mac
            )
    return found


def _mac_value(text: str) -> int:
    """The integer of a stored MAC (``fa:16:3e:..``; any netaddr form)."""
    try:
        return int(text.replace(":", ""), 16)
    except ValueError:
        return int(netaddr.EUI(text))


def _load_owners(conn: Connection, macs_text: Sequence[str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for part in _chunks(macs_text):
        query = select(VIFS.c.address, VIFS.c.instance_uuid).where(
            VIFS.c.address.in_(part), VIFS.c.deleted == 0
        )
        owners.update(
            {r.address: r.instance_uuid for r in conn.execute(query)}
        )
    return owners


class _Batch:
    """The rows of one poll and the rules played on them."""

    def __init__(self, conn: Connection, events: Sequence[model.LeaseEvent]):
        addresses = sorted({str(e.address) for e in events})
        self.rows = _load_rows(conn, addresses)
        released = {
            macs.format_mac(e.mac)
            for e in events
            if e.action == "del" and e.mac is not None
        }
        self.owners = _load_owners(conn, sorted(released))
        self.notes: collections.Counter[str] = collections.Counter()
        self.example: dict[str, str] = {}

    def note(self, kind: str, address: str) -> None:
        self.notes[kind] += 1
        self.example[kind] = address

    def lease(self, address: str, mac: netaddr.EUI | None) -> None:
        row = self.rows.get(address)
        if row is None or row.instance_uuid is None:
            self.note("lease_unassociated", address)
            return
        if not (mac is None or row.mac is None or row.mac == int(mac)):
            self.note("lease_other_mac", address)
            return
        if not row.allocated:
            self.note("lease_unallocated", address)
        row.leased = row.changed = True

    def release(self, address: str, mac: netaddr.EUI | None) -> None:
        row = self.rows.get(address)
        if row is None or row.instance_uuid is None:
            self.note("release_unassociated", address)
            return
        if not row.leased:
            self.note("release_unleased", address)
        row.leased, row.changed = False, True
        if row.allocated:
            return
        if mac is not None:
            owner = self.owners.get(macs.format_mac(mac))
            if owner is not None and owner != row.instance_uuid:
                self.note("release_kept", address)
                return
        row.instance_uuid, row.mac, row.disassociated = None, None, True

    def write(self, conn: Connection) -> None:
        """One UPDATE per outcome and chunk of ids, not one per row."""
        groups: dict[tuple[bool, bool], list[int]] = {}
        for row in self.rows.values():
            if row.changed:
                key = (row.leased, row.disassociated)
                groups.setdefault(key, []).append(row.id)
        now = rows.now()
        for (leased, gone), ids in sorted(groups.items()):
            values: dict[str, Any] = {"leased": leased, "updated_at": now}
            if gone:
                values.update(instance_uuid=None, virtual_interface_id=None)
            for part in _chunks(ids):
                target = FIXED.c.id.in_(part)
                conn.execute(update(FIXED).where(target).values(**values))

    def report(self) -> None:
        for kind, count in sorted(self.notes.items()):
            LOG.warning(
                "%d lease events: IP %s, e.g. %s",
                count,
                _NOTES[kind],
                self.example[kind],
            )


def apply(conn: Connection, events: Sequence[model.LeaseEvent]) -> None:
    """Apply ``events`` in order inside the caller's transaction."""
    if not events:
        return
    batch = _Batch(conn, events)
    for event in events:
        address = str(event.address)
        if event.action in ("add", "old"):
            batch.lease(address, event.mac)
        elif event.action == "del":
            batch.release(address, event.mac)
        else:
            LOG.debug("ignoring DHCP event %s for %s", event.action, address)
    batch.write(conn)
    batch.report()
