"""Floating IPs (nova.network.floating_ips.FloatingIP), DB side only.

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`. Every change to
an association bumps the global ``rules`` counter in the same
transaction, so hosts know to re-render their NAT rules.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

import netaddr
from sqlalchemy import Connection, and_, insert, select, true, update

from flatnet import exception, model
from flatnet.db import rows
from flatnet.db.engine import Database, translate_errors
from flatnet.db.rows import FIXED, FLOATING, INSTANCES, VIFS

LOG = logging.getLogger(__name__)


def _query() -> Any:
    return (
        select(
            FLOATING,
            FIXED.c.address.label("fixed_address"),
            FIXED.c.instance_uuid,
            INSTANCES.c.hostname.label("instance_hostname"),
        )
        .outerjoin(FIXED, FIXED.c.id == FLOATING.c.fixed_ip_id)
        .outerjoin(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .where(FLOATING.c.deleted == 0)
    )


def _to_floating(row: Any) -> model.FloatingIp:
    return model.FloatingIp(
        id=row.id,
        address=netaddr.IPAddress(row.address),
        pool=row.pool,
        interface=row.interface,
        fixed_address=(
            netaddr.IPAddress(row.fixed_address) if row.fixed_address else None
        ),
        instance_uuid=row.instance_uuid if row.fixed_address else None,
        project_id=row.project_id,
        host=row.host,
        auto_assigned=bool(row.auto_assigned),
        instance_hostname=(
            row.instance_hostname if row.fixed_address else None
        ),
    )


def _get(conn: Connection, address: netaddr.IPAddress) -> model.FloatingIp:
    row = conn.execute(
        _query().where(FLOATING.c.address == str(address))
    ).first()
    if row is None:
        raise exception.FloatingIpNotFound(address=address)
    return _to_floating(row)


def floating_create(
    db: Database,
    addresses: Iterable[netaddr.IPAddress],
    *,
    pool: str,
    interface: str | None,
) -> int:
    """Add addresses to ``pool``; all or nothing. Returns how many.

    Raises FloatingIpAlreadyExists.
    """
    when = rows.now()
    values = [
        {
            "address": str(a),
            "pool": pool,
            "interface": interface,
            "auto_assigned": False,
            "created_at": when,
            "deleted": 0,
        }
        for a in addresses
    ]
    if not values:
        return 0
    with db.write() as conn:
        for chunk_start in range(0, len(values), 1000):
            chunk = values[chunk_start : chunk_start + 1000]
            with translate_errors(address=_first_dup(conn, chunk)):
                conn.execute(insert(FLOATING), chunk)
    return len(values)


def _first_dup(conn: Connection, chunk: list[dict[str, Any]]) -> str | None:
    addresses = [v["address"] for v in chunk]
    return conn.execute(
        select(FLOATING.c.address).where(
            FLOATING.c.address.in_(addresses), FLOATING.c.deleted == 0
        )
    ).scalar()


def floating_list(db: Database) -> list[model.FloatingIp]:
    with db.read() as conn:
        found = conn.execute(_query().order_by(FLOATING.c.id)).all()
    return [_to_floating(r) for r in found]


def floating_for_host(db: Database, host: str) -> list[model.FloatingIp]:
    """Associated floating IPs whose NAT lives on ``host``."""
    query = _query().where(
        FLOATING.c.host == host, FLOATING.c.fixed_ip_id.is_not(None)
    )
    with db.read() as conn:
        found = conn.execute(query.order_by(FLOATING.c.id)).all()
    return [_to_floating(r) for r in found]


def _first_fixed_ip(conn: Connection, instance_ident: str) -> Any:
    query = (
        select(FIXED.c.id, FIXED.c.address, INSTANCES.c.project_id)
        .join(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .join(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .where(
            INSTANCES.c.deleted == 0,
            (INSTANCES.c.uuid == instance_ident)
            | (INSTANCES.c.hostname == instance_ident.lower()),
            and_(FIXED.c.deleted == 0, FIXED.c.allocated == true()),
        )
        .order_by(VIFS.c.id)
        .limit(1)
    )
    row = conn.execute(query).first()
    if row is None:
        raise exception.InstanceNotFound(instance=instance_ident)
    return row


def _associate(
    conn: Connection,
    floating: model.FloatingIp,
    instance_ident: str,
    host: str,
) -> model.FloatingIp:
    fixed = _first_fixed_ip(conn, instance_ident)
    if floating.fixed_address is not None:
        if str(floating.fixed_address) == fixed.address:
            return floating  # already there: idempotent, nothing to apply
        raise exception.FloatingIpAssociated(
            address=floating.address, instance=_who(floating)
        )
    with translate_errors(fixed_address=fixed.address):
        conn.execute(
            update(FLOATING)
            .where(FLOATING.c.id == floating.id)
            .values(
                fixed_ip_id=fixed.id,
                host=host,
                project_id=fixed.project_id,
                updated_at=rows.now(),
            )
        )
    rows.bump_counter(conn, rows.RULES_COUNTER)
    return _get(conn, floating.address)


def floating_associate(
    db: Database, address: netaddr.IPAddress, instance_ident: str, host: str
) -> model.FloatingIp:
    """Point ``address`` at the instance's first fixed IP; a no-op if it
    already is. Raises FloatingIpNotFound, InstanceNotFound,
    FloatingIpAssociated (it points at another instance: disassociate it
    first; nova moved it silently), Conflict (the fixed IP already has a
    floating IP)."""
    with db.write() as conn:
        return _associate(conn, _get(conn, address), instance_ident, host)


def floating_associate_from_pool(
    db: Database, pool: str, instance_ident: str, host: str
) -> model.FloatingIp:
    """nova's allocate_floating_ip + associate: the first free address of
    ``pool`` (by id). Raises FloatingIpPoolNotFound, NoMoreFloatingIps,
    InstanceNotFound, Conflict."""
    live = and_(FLOATING.c.pool == pool, FLOATING.c.deleted == 0)
    with db.write() as conn:
        if (
            conn.execute(select(FLOATING.c.id).where(live).limit(1)).first()
            is None
        ):
            raise exception.FloatingIpPoolNotFound(pool=pool)
        row = conn.execute(
            _query()
            .where(live, FLOATING.c.fixed_ip_id.is_(None))
            .order_by(FLOATING.c.id)
            .limit(1)
        ).first()
        if row is None:
            raise exception.NoMoreFloatingIps(pool=pool)
        return _associate(conn, _to_floating(row), instance_ident, host)


def floating_disassociate(
    db: Database, address: netaddr.IPAddress
) -> model.FloatingIp:
    """Detach ``address``; returns it as it was before (with the fixed
    address, None if it was not associated: idempotent). Raises
    FloatingIpNotFound."""
    with db.write() as conn:
        floating = _get(conn, address)
        if floating.fixed_address is None:
            return floating
        conn.execute(
            update(FLOATING)
            .where(FLOATING.c.id == floating.id)
            .values(fixed_ip_id=None, host=None, updated_at=rows.now())
        )
        rows.bump_counter(conn, rows.RULES_COUNTER)
    return floating


@dataclasses.dataclass(frozen=True, slots=True)
class FloatingDeleted:
    """What ``floating delete`` did: deleted, and absent addresses."""

    deleted: list[netaddr.IPAddress]
    missing: list[netaddr.IPAddress]


def _live_rows(conn: Connection, addresses: list[str]) -> dict[str, Any]:
    """address -> row of the live floating IPs among ``addresses``
    (queried 1,000 at a time: SQLite limits bound parameters)."""
    found = {}
    for start in range(0, len(addresses), 1000):
        chunk = addresses[start : start + 1000]
        query = _query().where(FLOATING.c.address.in_(chunk))
        found.update({str(r.address): r for r in conn.execute(query)})
    return found


def _who(floating: model.FloatingIp) -> str:
    return floating.instance_hostname or str(floating.instance_uuid)


def floating_delete(
    db: Database,
    addresses: Iterable[netaddr.IPAddress],
    *,
    skip_missing: bool = False,
) -> FloatingDeleted:
    """Soft-delete addresses; all or nothing. An address in no pool is
    skipped with ``skip_missing`` (a range, as nova-manage did) and
    FloatingIpNotFound otherwise, as is a range of which none exists.
    Raises FloatingIpAssociated (nothing is deleted then)."""
    when = rows.now()
    wanted = list(addresses)
    with db.write() as conn:
        live = _live_rows(conn, [str(a) for a in wanted])
        missing = [a for a in wanted if str(a) not in live]
        if missing and (not skip_missing or len(missing) == len(wanted)):
            raise exception.FloatingIpNotFound(address=missing[0])
        found = [_to_floating(live[str(a)]) for a in wanted if str(a) in live]
        for floating in found:
            if floating.fixed_address is not None:
                raise exception.FloatingIpAssociated(
                    address=floating.address, instance=_who(floating)
                )
            conn.execute(
                update(FLOATING)
                .where(FLOATING.c.id == floating.id)
                .values(deleted=FLOATING.c.id, deleted_at=when)
            )
    return FloatingDeleted([f.address for f in found], missing)


def rules_generation(db: Database) -> int:
    """The global counter bumped by every floating IP association change."""
    with db.read() as conn:
        return rows.counter(conn, rows.RULES_COUNTER)
