"""The compute firewall's input for one host, read in one transaction.

Private to :mod:`flatnet.db`; use :func:`flatnet.db.api.host_firewall`.

nova's ``IptablesFirewallDriver.instance_rules`` read, per instance, its
groups' rules (``SecurityGroupRuleList.get_by_instance``) and, per rule
with a source group, that group's instances on every host
(``InstanceList.get_by_security_group``) with their fixed IPs. Here the
whole host is one read: the instances placed on it (live, ``host`` = the
host, or being live-migrated to it: ``live_migrations``) with their
allocated fixed IPs, MAC, network CIDR and DHCP server; every group they
use and, transitively, every group named as a rule's source; and each of
those groups' member addresses on every host. The ``firewall``
generation is read first in the same transaction, so the state returned
is at least as new as that generation (PostgreSQL at READ COMMITTED may
show later commits to later statements: a host then applies a newer
state and records the older generation, which only costs one more sync).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import netaddr
from sqlalchemy import Connection, select

from flatnet.db import rows
from flatnet.db.engine import Database
from flatnet.db.live_migration import filtered_on
from flatnet.db.rows import FIXED, INSTANCES, NETWORKS, VIFS
from flatnet.db.secgroups import (
    FIREWALL_COUNTER,
    GROUPS,
    MEMBERS,
    RULES,
    to_rule,
)
from flatnet.plan import firewall_model as fw

#: nova's default ``instance_name_template`` (``instance-%08x``): the
#: libvirt domain name that nwfilter names are built from
INSTANCE_NAME = "instance-{:08x}"


@functools.lru_cache(maxsize=1 << 16)
def _mac(text: str) -> netaddr.EUI:
    """A stored MAC, memoised by text (every sync reads them again)."""
    return netaddr.EUI(text)


def nic_rows(
    conn: Connection, host: str, uuids: Iterable[str] | None = None
) -> list[Any]:
    """The NIC rows of the live instances on ``host`` (only those of
    ``uuids`` when given)."""
    only = () if uuids is None else (INSTANCES.c.uuid.in_(list(uuids)),)
    return list(
        conn.execute(
            select(
                INSTANCES.c.id,
                INSTANCES.c.uuid,
                VIFS.c.id.label("vif_id"),
                VIFS.c.address.label("mac"),
                FIXED.c.address,
                NETWORKS.c.cidr,
                NETWORKS.c.enable_dhcp,
                NETWORKS.c.dhcp_server,
                NETWORKS.c.gateway,
            )
            .select_from(INSTANCES)
            .outerjoin(
                VIFS,
                (VIFS.c.instance_uuid == INSTANCES.c.uuid)
                & (VIFS.c.deleted == 0),
            )
            .outerjoin(
                FIXED,
                (FIXED.c.virtual_interface_id == VIFS.c.id)
                & (FIXED.c.deleted == 0)
                & FIXED.c.allocated,
            )
            .outerjoin(NETWORKS, NETWORKS.c.id == VIFS.c.network_id)
            .where(filtered_on(host), INSTANCES.c.deleted == 0, *only)
            .order_by(INSTANCES.c.id, VIFS.c.id, FIXED.c.id)
        ).all()
    )


def _dhcp_server(
    enabled: bool, server: str | None, gateway: str
) -> str | None:
    """The address the guest's DHCP answers come from (dnsmasq listens
    on dhcp_server, else the gateway), None without DHCP."""
    if not enabled:
        return None
    return server or gateway


def _nic(rows_of_vif: tuple[tuple[Any, ...], ...]) -> fw.FilteredNic:
    """One VIF's rows (one per fixed IP) as a FilteredNic."""
    _i, _u, _v, mac, _a, cidr, enabled, server, gateway = rows_of_vif[0]
    server = _dhcp_server(enabled, server, gateway)
    return fw.FilteredNic(
        mac=_mac(mac),
        addresses=tuple(
            fw.ip_address(r[4]) for r in rows_of_vif if r[4] is not None
        ),
        network_cidr=fw.network_of(cidr),
        dhcp_server=None if server is None else fw.ip_address(server),
    )


@functools.lru_cache(maxsize=1 << 16)
def filtered_instance(
    inst_id: int,
    uuid: str,
    vifs: tuple[tuple[tuple[Any, ...], ...], ...],
    groups: tuple[int, ...],
) -> fw.FilteredInstance:
    """An instance from its rows, memoised on them: an instance whose
    rows did not change since the last sync is the same object, so
    the planner, the flow comparison and the delta skip it at once."""
    return fw.FilteredInstance(
        id=inst_id,
        uuid=uuid,
        nics=tuple(map(_nic, vifs)),
        security_groups=groups,
        name=INSTANCE_NAME.format(inst_id),
    )


Vifs = tuple[tuple[tuple[Any, ...], ...], ...]


def nics_of(found: Iterable[Any]) -> dict[int, tuple[str, Vifs]]:
    """instance id -> (uuid, its VIFs' rows as plain tuples, one per
    fixed IP); rows are unpacked by position (Row attribute access is
    slow at 5,000)."""
    vifs: dict[int, dict[int, list[tuple[Any, ...]]]] = {}
    uuids: dict[int, str] = {}
    for row in found:
        inst_id, uuid, vif_id, _mac_text, _addr, cidr = row[:6]
        uuids[inst_id] = uuid
        per = vifs.setdefault(inst_id, {})
        if vif_id is not None and cidr is not None:
            per.setdefault(vif_id, []).append(tuple(row))
    return {
        inst_id: (uuid, tuple(tuple(g) for g in vifs[inst_id].values()))
        for inst_id, uuid in uuids.items()
    }


def memberships(
    conn: Connection, uuids: Iterable[str]
) -> dict[str, list[int]]:
    """instance uuid -> ids of its live groups."""
    wanted = list(uuids)
    found: dict[str, list[int]] = {u: [] for u in wanted}
    if not wanted:
        return found
    result = conn.execute(
        select(MEMBERS.c.instance_uuid, MEMBERS.c.security_group_id)
        .join(GROUPS, GROUPS.c.id == MEMBERS.c.security_group_id)
        .where(
            MEMBERS.c.instance_uuid.in_(wanted),
            MEMBERS.c.deleted == 0,
            GROUPS.c.deleted == 0,
        )
        .order_by(MEMBERS.c.security_group_id)
    ).all()
    for row in result:
        found[row.instance_uuid].append(row.security_group_id)
    return found


def groups_closure(
    conn: Connection, start: set[int]
) -> list[fw.SecurityGroup]:
    """The groups ``start`` and every group their rules name as a
    source, transitively (HostFirewall wants each named group given)."""
    names: dict[int, str] = {}
    rules: dict[int, list[fw.SecurityGroupRule]] = {}
    todo = set(start)
    while todo:
        batch = sorted(todo)
        for row in conn.execute(
            select(GROUPS.c.id, GROUPS.c.name).where(GROUPS.c.id.in_(batch))
        ):
            names[row.id] = row.name
            rules[row.id] = []
        for row in conn.execute(
            select(RULES)
            .where(RULES.c.parent_group_id.in_(batch), RULES.c.deleted == 0)
            .order_by(RULES.c.id)
        ):
            rules[row.parent_group_id].append(to_rule(row))
        sources = {
            r.source_group
            for group_id in batch
            for r in rules.get(group_id, ())
            if r.source_group is not None
        }
        todo = sources - set(names)
    return [
        fw.SecurityGroup(id=gid, name=names[gid], rules=tuple(rules[gid]))
        for gid in sorted(names)
    ]


def member_rows(
    conn: Connection,
    group_ids: Iterable[int],
    uuids: Iterable[str] | None = None,
) -> list[Any]:
    """(group id, instance uuid, address) of the live members of
    ``group_ids`` (only ``uuids`` when given)."""
    wanted = sorted(group_ids)
    if not wanted:
        return []
    only = () if uuids is None else (MEMBERS.c.instance_uuid.in_(list(uuids)),)
    return list(
        conn.execute(
            select(
                MEMBERS.c.security_group_id,
                MEMBERS.c.instance_uuid,
                FIXED.c.address,
            )
            .join(INSTANCES, INSTANCES.c.uuid == MEMBERS.c.instance_uuid)
            .join(FIXED, FIXED.c.instance_uuid == INSTANCES.c.uuid)
            .where(
                MEMBERS.c.security_group_id.in_(wanted),
                MEMBERS.c.deleted == 0,
                INSTANCES.c.deleted == 0,
                FIXED.c.deleted == 0,
                FIXED.c.allocated,
                *only,
            )
        ).all()
    )


def _members(
    conn: Connection, group_ids: Iterable[int]
) -> dict[int, frozenset[netaddr.IPAddress]]:
    """group id -> allocated fixed IPs of its live instances (any host)."""
    found: dict[int, set[netaddr.IPAddress]] = {}
    for gid, _uuid, address in member_rows(conn, group_ids):
        found.setdefault(gid, set()).add(fw.ip_address(address))
    return {gid: frozenset(addrs) for gid, addrs in found.items()}


def read_host_firewall(
    conn: Connection, host: str
) -> tuple[int, fw.HostFirewall]:
    """:func:`host_firewall` inside an open transaction."""
    generation = rows.counter(conn, FIREWALL_COUNTER)
    nics = nics_of(nic_rows(conn, host))
    groups_of = memberships(conn, (uuid for uuid, _ in nics.values()))
    instances = [
        filtered_instance(inst_id, uuid, vifs, tuple(groups_of[uuid]))
        for inst_id, (uuid, vifs) in sorted(nics.items())
    ]
    used = {g for ids in groups_of.values() for g in ids}
    groups = groups_closure(conn, used)
    return generation, fw.HostFirewall(
        instances=tuple(instances),
        groups=tuple(groups),
        members=_members(conn, (g.id for g in groups)),
    )


def host_firewall(db: Database, host: str) -> tuple[int, fw.HostFirewall]:
    """(``firewall`` generation, what ``host`` must filter), one read."""
    with db.read() as conn:
        return read_host_firewall(conn, host)
