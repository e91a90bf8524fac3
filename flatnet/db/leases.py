"""DHCP lease state of fixed IPs (nova network manager lease_fixed_ip,
release_fixed_ip).

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.

``lease`` sets ``leased``; ``release`` clears it and, once the address is
no longer allocated, disassociates it unless the MAC now belongs to
another instance. Stale deallocated addresses are disassociated after a
timeout; unlike nova's db.fixed_ip_disassociate_all_by_timeout, that
also clears ``virtual_interface_id``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Sequence
from typing import Any

import netaddr
from sqlalchemy import (
    Connection,
    and_,
    false,
    insert,
    not_,
    or_,
    select,
    true,
    update,
)

from flatnet import mac as macs
from flatnet import model
from flatnet.db import lease_batch, rows, shards
from flatnet.db.engine import Database
from flatnet.db.rows import FIXED, INSTANCES, JOURNALS, NETWORKS, VIFS

LOG = logging.getLogger(__name__)


def _fixed_row(conn: Connection, address: netaddr.IPAddress) -> Any:
    query = (
        select(FIXED, VIFS.c.address.label("mac"))
        .outerjoin(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .where(FIXED.c.address == str(address), FIXED.c.deleted == 0)
    )
    return conn.execute(query).first()


def _mac_matches(row: Any, mac: netaddr.EUI | None) -> bool:
    return mac is None or row.mac is None or netaddr.EUI(row.mac) == mac


def lease(
    conn: Connection, address: netaddr.IPAddress, mac: netaddr.EUI | None
) -> bool:
    """DHCPACK ("add"/"old"): mark the address leased. True if changed.

    An address that is not associated, or whose VIF has another MAC (a
    stale client), is ignored with a warning.
    """
    row = _fixed_row(conn, address)
    if row is None or row.instance_uuid is None:
        LOG.warning("IP %s leased that is not associated", address)
        return False
    if not _mac_matches(row, mac):
        LOG.warning(
            "IP %s leased by %s, but it belongs to %s; ignored",
            address,
            mac,
            row.mac,
        )
        return False
    if not row.allocated:
        LOG.warning("IP |%s| leased that isn't allocated", address)
    conn.execute(
        update(FIXED)
        .where(FIXED.c.id == row.id)
        .values(leased=True, updated_at=rows.now())
    )
    return True


def _vif_owner(conn: Connection, mac: netaddr.EUI) -> str | None:
    return conn.execute(
        select(VIFS.c.instance_uuid).where(
            VIFS.c.address == macs.format_mac(mac), VIFS.c.deleted == 0
        )
    ).scalar()


def release(
    conn: Connection, address: netaddr.IPAddress, mac: netaddr.EUI | None
) -> bool:
    """DHCP release or expiry ("del"), nova's ``release_fixed_ip``.

    Clears ``leased``; if the address is not allocated any more it is
    disassociated, unless ``mac``'s live VIF belongs to another instance.
    Returns True if the address was disassociated.
    """
    row = _fixed_row(conn, address)
    if row is None or row.instance_uuid is None:
        LOG.warning("IP %s released that is not associated", address)
        return False
    if not row.leased:
        LOG.warning("IP %s released that was not leased", address)
    values: dict[str, Any] = {"leased": False, "updated_at": rows.now()}
    disassociate = not row.allocated
    if disassociate and mac is not None:
        owner = _vif_owner(conn, mac)
        if owner is not None and owner != row.instance_uuid:
            LOG.info(
                "Ignoring request to release fixed IP %s: now "
                "associated with a new instance",
                address,
            )
            disassociate = False
    if disassociate:
        values.update(instance_uuid=None, virtual_interface_id=None)
    conn.execute(update(FIXED).where(FIXED.c.id == row.id).values(**values))
    return disassociate


@dataclasses.dataclass(frozen=True, slots=True)
class JournalBatch:
    """New lines of one journal: their events, the ``(inode, offset)``
    just past them, and how many lines were skipped as invalid."""

    journal: str
    inode: int
    offset: int
    events: Sequence[model.LeaseEvent]
    invalid: int = 0


def apply_lease_events(  # noqa: PLR0913 - positional form kept for bench/tests; host, invalid keyword-only
    db: Database,
    journal: str,
    inode: int,
    offset: int,
    events: Sequence[model.LeaseEvent],
    *,
    host: str = "",
    invalid: int = 0,
) -> None:
    """Apply ``events`` and record ``(inode, offset)`` for ``host``'s
    ``journal`` in one transaction, so each journal line takes effect
    exactly once; ``invalid`` skipped lines are added to its count.

    ``add`` and ``old`` lease, ``del`` releases (:func:`lease`,
    :func:`release`, played in order on rows read once per call:
    :mod:`flatnet.db.lease_batch`); other actions (``init``, ``tftp``)
    are ignored.
    """
    batch = JournalBatch(journal, inode, offset, events, invalid)
    apply_lease_journals(db, [batch], host=host)


def apply_lease_journals(
    db: Database, batches: Sequence[JournalBatch], *, host: str = ""
) -> None:
    """:func:`apply_lease_events` for several journals in ONE
    transaction (one commit per daemon poll, not one per shard): the
    events in the order given, then every journal's position."""
    with db.write() as conn:
        lease_batch.apply(conn, [e for b in batches for e in b.events])
        for b in batches:
            position = {"inode": b.inode, "offset": b.offset}
            key = {"host": host, "path": b.journal}
            _record_position(conn, key, position, b.invalid)


def _record_position(
    conn: Connection,
    key: dict[str, str],
    position: dict[str, int],
    invalid: int,
) -> None:
    """Set a journal's ``(inode, offset)`` and add to its invalid lines."""
    done = conn.execute(
        update(JOURNALS)
        .where(JOURNALS.c.host == key["host"], JOURNALS.c.path == key["path"])
        .values(**position, invalid_lines=JOURNALS.c.invalid_lines + invalid)
    )
    if done.rowcount == 0:
        conn.execute(
            insert(JOURNALS).values(**key, **position, invalid_lines=invalid)
        )


def journal_offset(
    db: Database, journal: str, host: str = ""
) -> tuple[int, int] | None:
    """``(inode, offset)`` recorded for ``host``'s ``journal``, None if
    never."""
    with db.read() as conn:
        row = conn.execute(
            select(JOURNALS.c.inode, JOURNALS.c.offset).where(
                JOURNALS.c.host == host, JOURNALS.c.path == journal
            )
        ).first()
    return None if row is None else (int(row.inode), int(row.offset))


def journal_offsets(
    db: Database, host: str = ""
) -> dict[str, tuple[int, int]]:
    """Every journal of ``host`` -> its recorded ``(inode, offset)``
    (one query for a poll of many journals)."""
    with db.read() as conn:
        found = conn.execute(
            select(JOURNALS.c.path, JOURNALS.c.inode, JOURNALS.c.offset).where(
                JOURNALS.c.host == host
            )
        ).all()
    return {r.path: (int(r.inode), int(r.offset)) for r in found}


def journal_invalid_lines(db: Database, host: str) -> dict[str, int]:
    """Path -> invalid (skipped) lines, for ``host``'s journals."""
    with db.read() as conn:
        found = conn.execute(
            select(JOURNALS.c.path, JOURNALS.c.invalid_lines).where(
                JOURNALS.c.host == host
            )
        ).all()
    return {r.path: int(r.invalid_lines) for r in found}


def disassociate_stale_fixed_ips(
    db: Database, host: str, older_than: datetime.datetime
) -> int:
    """nova ``disassociate_all_by_timeout``: deallocated addresses of
    instances whose network this host serves, last changed before
    ``older_than`` (naive UTC or aware), lose their instance, VIF and
    lease. Returns how many. A network with no host counts as this
    host's unless it is multi_host.
    """
    served = or_(
        NETWORKS.c.host == host,
        and_(NETWORKS.c.multi_host == true(), INSTANCES.c.host == host),
        and_(NETWORKS.c.host.is_(None), NETWORKS.c.multi_host == false()),
    )
    query = (
        select(FIXED.c.id, FIXED.c.network_id, FIXED.c.dhcp_shard)
        .join(NETWORKS, NETWORKS.c.id == FIXED.c.network_id)
        .join(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .where(
            FIXED.c.deleted == 0,
            FIXED.c.allocated == false(),
            FIXED.c.updated_at < rows.naive_utc(older_than),
            not_(FIXED.c.instance_uuid.is_(None)),
            served,
        )
    )
    with db.write() as conn:
        stale = conn.execute(query).all()
        if stale:
            conn.execute(
                update(FIXED)
                .where(FIXED.c.id.in_([r.id for r in stale]))
                .values(
                    instance_uuid=None,
                    virtual_interface_id=None,
                    leased=False,
                    updated_at=rows.now(),
                )
            )
            rows.bump_generations(conn, (r.network_id for r in stale))
            shards.touch(
                conn, ((r.id, r.network_id, r.dhcp_shard) for r in stale)
            )
    if stale:
        LOG.info(
            "disassociated %d stale fixed IPs for host %s", len(stale), host
        )
    return len(stale)


def expire_leases(
    db: Database, network_id: int, older_than: datetime.datetime
) -> list[str]:
    """Release (as a ``del`` without MAC) every leased address of the
    network not confirmed since ``older_than`` (naive UTC or aware): the
    daemon's own lease timeout, for a dnsmasq that never reports the
    expiry of a lease it did not know (restarted without ``init``).
    Every ``add``/``old``/``del`` sets ``updated_at``. Returns the
    addresses released."""
    query = select(FIXED.c.address).where(
        FIXED.c.network_id == network_id,
        FIXED.c.deleted == 0,
        FIXED.c.leased == true(),
        FIXED.c.updated_at < rows.naive_utc(older_than),
    )
    with db.write() as conn:
        stale = [str(a) for a in conn.execute(query).scalars()]
        lease_batch.apply(
            conn,
            [
                model.LeaseEvent("del", None, netaddr.IPAddress(a))
                for a in stale
            ],
        )
    if stale:
        LOG.info(
            "network %d: %d leases expired unseen (e.g. %s)",
            network_id,
            len(stale),
            stale[0],
        )
    return stale
