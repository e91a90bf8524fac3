"""Builders of compute-firewall input (security groups, instances)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import netaddr

from flatnet.plan.firewall_model import (
    FilteredInstance,
    FilteredNic,
    HostFirewall,
    SecurityGroup,
    SecurityGroupRule,
    group_members,
    new_rule,
)

CIDR = "10.0.0.0/24"
DHCP = "10.0.0.1"


def mac_for(n: int) -> str:
    return f"fa:16:3e:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"


def instance(
    inst_id: int,
    *addresses: str,
    groups: Iterable[int] = (1,),
    cidr: str = CIDR,
    dhcp: str | None = DHCP,
) -> FilteredInstance:
    """One instance with one NIC holding ``addresses``."""
    nic = FilteredNic(
        netaddr.EUI(mac_for(inst_id)),
        tuple(netaddr.IPAddress(a) for a in addresses),
        netaddr.IPNetwork(cidr),
        None if dhcp is None else netaddr.IPAddress(dhcp),
    )
    return FilteredInstance(
        inst_id,
        f"uuid-{inst_id}",
        (nic,),
        tuple(groups),
        f"instance-{inst_id}",
    )


def group(
    group_id: int, *rules: SecurityGroupRule, name: str | None = None
) -> SecurityGroup:
    return SecurityGroup(group_id, name or f"g{group_id}", tuple(rules))


def rule(
    protocol: str | None,
    ports: str | None = None,
    cidr: str | None = None,
    source: int | None = None,
    rule_id: int = 0,
) -> SecurityGroupRule:
    return new_rule(protocol, ports, cidr, source, rule_id)


def host(
    instances: Iterable[FilteredInstance],
    groups: Iterable[SecurityGroup],
    members: Mapping[int, frozenset[netaddr.IPAddress]] | None = None,
    remote: Iterable[FilteredInstance] = (),
) -> HostFirewall:
    """A host filtering ``instances``; group members are those
    instances plus ``remote`` ones (on other hosts) unless given."""
    local = tuple(instances)
    if members is None:
        members = group_members((*local, *remote))
    return HostFirewall(local, tuple(groups), members)


def addresses(*text: str) -> frozenset[netaddr.IPAddress]:
    return frozenset(netaddr.IPAddress(a) for a in text)
