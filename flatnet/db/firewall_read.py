"""What one compute host must filter, read from the database.

TEMPORARY SEAM: stream "sg" writes ``host_firewall(db, host)`` with this
exact signature in :mod:`flatnet.db.secgroups`; until it lands the
compute firewall reads through this module (re-exported by
:mod:`flatnet.db.api`). Only the existing nova tables are read:
``security_groups``, ``security_group_rules``,
``security_group_instance_association``, ``instances``, ``fixed_ips``,
``virtual_interfaces``, ``networks``.

The firewall generation (:func:`firewall_generation`) is the counter of
scope ``firewall`` (bumped by security-group changes) plus the sum of
every network's generation (bumped in the same transaction as every
allocation and deallocation, so a new or deleted instance moves it too).
It only grows, which is all ``wait_ready`` needs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

import netaddr
from sqlalchemy import Connection, Table, func, select

from flatnet import exception
from flatnet.db import models
from flatnet.db.engine import Database
from flatnet.db.rows import FIXED, GENERATIONS, INSTANCES, NETWORKS, VIFS
from flatnet.plan.firewall_model import (
    FilteredInstance,
    FilteredNic,
    HostFirewall,
    SecurityGroup,
    SecurityGroupRule,
)

LOG = logging.getLogger(__name__)

#: generation scope bumped by every security-group change
FIREWALL_COUNTER = "firewall"
GROUPS = cast(Table, models.SecurityGroup.__table__)
RULES = cast(Table, models.SecurityGroupRule.__table__)
ASSOC = cast(Table, models.SecurityGroupInstanceAssociation.__table__)


def instance_key(uuid: str) -> str:
    """The readiness key of an instance's filters (component firewall)."""
    return f"instance:{uuid}"


def instance_name(instance_id: int) -> str:
    """nova's ``instance_name_template`` default ``instance-%08x``."""
    return f"instance-{instance_id:08x}"


def _generation(conn: Connection) -> int:
    nets = conn.execute(select(func.sum(NETWORKS.c.generation))).scalar()
    fw = conn.execute(
        select(GENERATIONS.c.generation).where(
            GENERATIONS.c.scope == FIREWALL_COUNTER
        )
    ).scalar()
    return int(nets or 0) + int(fw or 0)


def firewall_generation(db: Database) -> int:
    """The generation every firewall key is wanted at (one query)."""
    with db.read() as conn:
        return _generation(conn)


def host_instances(db: Database, host: str) -> list[str]:
    """The uuids of the live instances placed on ``host``."""
    with db.read() as conn:
        found = conn.execute(
            select(INSTANCES.c.uuid).where(
                INSTANCES.c.host == host, INSTANCES.c.deleted == 0
            )
        ).scalars()
        return sorted(found)


def host_firewall(db: Database, host: str) -> tuple[int, HostFirewall]:
    """``(generation, HostFirewall)`` of ``host`` from one snapshot."""
    with db.read() as conn:
        generation = _generation(conn)
        groups = _groups(conn)
        instances = _instances(conn, host, set(groups))
        members = _members(conn, _sources(groups.values()))
    return generation, HostFirewall(
        tuple(instances), tuple(groups.values()), members
    )


def _rule(row: Any, live: set[int]) -> SecurityGroupRule | None:
    if row.group_id is not None and row.group_id not in live:
        return None  # its source group is gone: no members, no grant
    try:
        cidr = None if row.cidr is None else netaddr.IPNetwork(row.cidr)
        return SecurityGroupRule(
            row.protocol, row.from_port, row.to_port, cidr, row.group_id,
            row.id,
        )  # fmt: skip
    except (exception.InvalidInput, netaddr.AddrFormatError) as exc:
        # fail closed: a rule that cannot be rendered grants nothing
        LOG.error("security group rule %s skipped: %s", row.id, exc)
        return None


def _groups(conn: Connection) -> dict[int, SecurityGroup]:
    found = conn.execute(
        select(GROUPS.c.id, GROUPS.c.name).where(GROUPS.c.deleted == 0)
    ).all()
    live = {r.id for r in found}
    by_group: dict[int, list[SecurityGroupRule]] = {g: [] for g in live}
    for row in conn.execute(
        select(RULES).where(RULES.c.deleted == 0).order_by(RULES.c.id)
    ):
        rule = _rule(row, live)
        if rule is not None and row.parent_group_id in by_group:
            by_group[row.parent_group_id].append(rule)
    return {
        r.id: SecurityGroup(r.id, r.name, tuple(by_group[r.id]))
        for r in sorted(found, key=lambda r: r.id)
    }


def _sources(groups: Iterable[SecurityGroup]) -> set[int]:
    return {
        r.source_group
        for g in groups
        for r in g.rules
        if r.source_group is not None
    }


def _instances(
    conn: Connection, host: str, live_groups: set[int]
) -> list[FilteredInstance]:
    here = (INSTANCES.c.host == host, INSTANCES.c.deleted == 0)
    found = conn.execute(
        select(INSTANCES.c.id, INSTANCES.c.uuid).where(*here)
    ).all()
    assoc: dict[str, list[int]] = {}
    for row in conn.execute(
        select(ASSOC.c.instance_uuid, ASSOC.c.security_group_id)
        .join(INSTANCES, INSTANCES.c.uuid == ASSOC.c.instance_uuid)
        .where(ASSOC.c.deleted == 0, *here)
        .order_by(ASSOC.c.security_group_id)
    ):
        if row.security_group_id in live_groups:
            assoc.setdefault(row.instance_uuid, []).append(
                row.security_group_id
            )
    nics = _nics(conn, here)
    return [
        FilteredInstance(
            r.id,
            r.uuid,
            tuple(nics.get(r.uuid, ())),
            tuple(assoc.get(r.uuid, ())),
            instance_name(r.id),
        )  # fmt: skip
        for r in found
    ]


def _nics(conn: Connection, here: Any) -> dict[str, list[FilteredNic]]:
    query = (
        select(
            FIXED.c.instance_uuid,
            FIXED.c.address,
            VIFS.c.address.label("mac"),
            NETWORKS.c.cidr,
            NETWORKS.c.dhcp_server,
            NETWORKS.c.gateway,
            NETWORKS.c.enable_dhcp,
        )  # fmt: skip
        .join(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .join(NETWORKS, NETWORKS.c.id == FIXED.c.network_id)
        .join(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .where(FIXED.c.deleted == 0, FIXED.c.allocated.is_(True), *here)
        .where(VIFS.c.deleted == 0)
        .order_by(FIXED.c.instance_uuid, VIFS.c.id)
    )
    found: dict[str, list[FilteredNic]] = {}
    for row in conn.execute(query):
        server = row.dhcp_server or row.gateway if row.enable_dhcp else None
        found.setdefault(row.instance_uuid, []).append(
            FilteredNic(
                netaddr.EUI(row.mac),
                (netaddr.IPAddress(row.address),),
                netaddr.IPNetwork(row.cidr),
                server,
            )  # fmt: skip
        )
    return found


def _members(
    conn: Connection, sources: set[int]
) -> dict[int, frozenset[netaddr.IPAddress]]:
    """Each source group's member addresses, on every host."""
    if not sources:
        return {}
    query = (
        select(ASSOC.c.security_group_id, FIXED.c.address)
        .join(INSTANCES, INSTANCES.c.uuid == ASSOC.c.instance_uuid)
        .join(FIXED, FIXED.c.instance_uuid == ASSOC.c.instance_uuid)
        .where(ASSOC.c.deleted == 0, INSTANCES.c.deleted == 0)
        .where(FIXED.c.deleted == 0, FIXED.c.allocated.is_(True))
        .where(ASSOC.c.security_group_id.in_(sorted(sources)))
    )
    found: dict[int, set[netaddr.IPAddress]] = {}
    for row in conn.execute(query):
        found.setdefault(row.security_group_id, set()).add(
            netaddr.IPAddress(row.address)
        )
    return {g: frozenset(a) for g, a in found.items()}


__all__ = [
    "FIREWALL_COUNTER",
    "firewall_generation",
    "host_firewall",
    "host_instances",
    "instance_key",
    "instance_name",
]
