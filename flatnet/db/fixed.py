"""Fixed IPs for the operator: list (filtered), summary, reserve.

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import netaddr
from sqlalchemy import Connection, and_, case, func, or_, select, update

from flatnet import exception, model
from flatnet.db import rows
from flatnet.db.engine import Database
from flatnet.db.networks import network_get
from flatnet.db.rows import FIXED, INSTANCES, NETWORKS, VIFS


@dataclasses.dataclass(frozen=True, slots=True)
class FixedIpFilter:
    """Which rows ``fixed list`` shows (all given conditions hold)."""

    host: str | None = None  # the instance's host
    network: str | None = None  # id, label, uuid or cidr
    within: netaddr.IPNetwork | None = None  # an address or a CIDR
    in_use_only: bool = False  # allocated, leased or reserved


@dataclasses.dataclass(frozen=True, slots=True)
class FixedIpSummary:
    """Counts of one network's fixed IPs."""

    network_id: int
    label: str
    cidr: netaddr.IPNetwork
    total: int
    allocated: int
    leased: int
    reserved: int
    free: int  # not reserved and not held by an instance


def fixed_ip_list(
    db: Database, which: FixedIpFilter | None = None
) -> list[model.FixedIpView]:
    """Fixed IPs of live networks in network and address order,
    narrowed by ``which``. Raises NetworkNotFound (``which.network``)."""
    which = which or FixedIpFilter()
    query = (
        select(
            FIXED,
            NETWORKS.c.cidr,
            NETWORKS.c.label,
            INSTANCES.c.hostname,
            INSTANCES.c.host.label("inst_host"),
            VIFS.c.address.label("mac"),
        )
        .join(NETWORKS, NETWORKS.c.id == FIXED.c.network_id)
        .outerjoin(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .outerjoin(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .where(FIXED.c.deleted == 0, NETWORKS.c.deleted == 0)
        .order_by(NETWORKS.c.id, FIXED.c.id)
    )
    if which.host is not None:
        query = query.where(INSTANCES.c.host == which.host)
    if which.network is not None:
        query = query.where(
            FIXED.c.network_id == network_get(db, which.network).id
        )
    if which.in_use_only:
        query = query.where(
            or_(FIXED.c.allocated, FIXED.c.leased, FIXED.c.reserved)
        )
    with db.read() as conn:
        found = [_fixed_view(r) for r in conn.execute(query)]
    if which.within is not None:
        found = [f for f in found if f.address in which.within]
    return found


def _fixed_view(r: Any) -> model.FixedIpView:
    return model.FixedIpView(
        address=netaddr.IPAddress(r.address),
        network_id=r.network_id,
        network_cidr=netaddr.IPNetwork(r.cidr),
        network_label=r.label,
        allocated=bool(r.allocated),
        leased=bool(r.leased),
        reserved=bool(r.reserved),
        instance_uuid=r.instance_uuid,
        hostname=r.hostname,
        host=r.inst_host,
        mac=netaddr.EUI(r.mac) if r.mac else None,
    )


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def fixed_ip_summary(db: Database) -> list[FixedIpSummary]:
    """Per live network: how many addresses, allocated, leased,
    reserved and free (one query)."""
    query = (
        select(
            NETWORKS.c.id,
            NETWORKS.c.label,
            NETWORKS.c.cidr,
            func.count(FIXED.c.id).label("total"),
            _count(FIXED.c.allocated).label("allocated"),
            _count(FIXED.c.leased).label("leased"),
            _count(FIXED.c.reserved).label("reserved"),
            _count(
                and_(~FIXED.c.reserved, FIXED.c.instance_uuid.is_(None))
            ).label("free"),
        )
        .outerjoin(
            FIXED,
            and_(FIXED.c.network_id == NETWORKS.c.id, FIXED.c.deleted == 0),
        )
        .where(NETWORKS.c.deleted == 0)
        .group_by(NETWORKS.c.id, NETWORKS.c.label, NETWORKS.c.cidr)
        .order_by(NETWORKS.c.id)
    )
    with db.read() as conn:
        found = conn.execute(query).all()
    return [
        FixedIpSummary(
            network_id=r.id, label=r.label, cidr=netaddr.IPNetwork(r.cidr),
            total=int(r.total), allocated=int(r.allocated),
            leased=int(r.leased), reserved=int(r.reserved),
            free=int(r.free),
        )
        for r in found
    ]  # fmt: skip


def _fixed_role(conn: Connection, row: Any) -> str | None:
    """What a fixed IP is to its network, if it must stay reserved."""
    net = rows.live_network(conn, row.network_id)
    address = netaddr.IPAddress(row.address)
    roles = (
        (net.gateway, "the gateway"),
        (net.dhcp_server, "the DHCP server address"),
        (net.cidr.network, "the network address"),
        (net.broadcast, "the broadcast address"),
    )
    for value, role in roles:
        if value is not None and address == value:
            return f"{role} of network {net.label}"
    return None


def fixed_ip_set_reserved(
    db: Database, address: netaddr.IPAddress, reserved: bool
) -> None:
    """``fixed reserve`` / ``unreserve``. Raises FixedIpNotFound,
    FixedIpAlreadyInUse (reserving an address in use) and InvalidInput
    (unreserving the gateway, DHCP, network or broadcast address: it
    would be handed to an instance)."""
    with db.write() as conn:
        row = conn.execute(
            select(FIXED).where(
                FIXED.c.address == str(address), FIXED.c.deleted == 0
            )
        ).first()
        if row is None:
            raise exception.FixedIpNotFound(address=address)
        if reserved and (row.instance_uuid or row.leased or row.host):
            raise exception.FixedIpAlreadyInUse(address=address)
        role = None if reserved else _fixed_role(conn, row)
        if role is not None:
            raise exception.InvalidInput(
                reason=f"{address} is {role}; it stays reserved"
            )
        conn.execute(
            update(FIXED)
            .where(FIXED.c.id == row.id)
            .values(reserved=reserved, updated_at=rows.now())
        )
