"""Which established flows to cut when permission goes away (PURE).

An instance chain accepts RELATED/ESTABLISHED before any rule, so a
flow let in by a rule outlives that rule until its conntrack entry goes
(Neutron LP#1335375, LP#1580377). :func:`flows_to_cut` compares two
desired states and lists the flows to delete, as :class:`FlowCut`
values in the ORIGINAL direction (source -> instance address): flows
the instance itself opened are never touched.

* an instance unfiltered, or one of its addresses gone: every flow to
  and from that address (it may be given to another instance next);
* a grant removed from an instance (a rule deleted or changed, a group
  left, the DHCP server or ``allow_same_net_traffic`` changed): the
  flows from its source to each address, narrowed to its protocol and
  to its port when it had a single one;
* a member removed from a group that a rule uses as its source: the
  flows from each of the member's addresses.

A cut whose flows some grant of the new state still admits entirely is
dropped. A cut may still cover a few flows that remain allowed (a
range narrowed, a rule replaced by another with a different port);
their next packet is then judged by the rules again (with the kernel's
default ``nf_conntrack_tcp_loose=1`` a TCP flow is picked up again).

Changes made while the service was down have no old state to compare
with: at start, :func:`not_admitted` judges the live conntrack entries
against the new state instead. An entry whose original destination is
an instance address and that no grant of that instance admits (its
source, protocol and destination port) would be dropped if it were
new, so it is cut; entries the instances opened themselves, and
entries to addresses that are not this host's instances, are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Protocol, TypeVar

import netaddr

from flatnet.plan.firewall_model import (
    FilteredInstance,
    HostFirewall,
    SecurityGroup,
)

_ANY = netaddr.IPNetwork("0.0.0.0/0")
#: a removed grant of a group with more members than this is cut for
#: every source (one conntrack call per address instead of thousands)
MAX_SOURCES = 32


@dataclasses.dataclass(frozen=True, slots=True)
class FlowCut:
    """Delete the conntrack entries whose original direction goes from
    ``src`` (None: anywhere) to ``dst``, of ``protocol`` (None: all)
    and destination ``port`` (None: all). ``gone``: the address left
    this host's instances; delete the flows it opened too (``orig_src
    = dst``), or a reused address would receive their replies."""

    dst: netaddr.IPAddress
    src: netaddr.IPNetwork | None = None
    protocol: str | None = None
    port: int | None = None
    gone: bool = False

    def sort_key(self) -> tuple[int, int, int, str, int]:
        src = self.src or _ANY
        return (
            int(self.dst),
            int(src.first),
            src.prefixlen,
            self.protocol or "",
            self.port or 0,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Grant:
    """What one rule of an instance chain admits: from a network or a
    group's members, of a protocol, to a port range (None: all)."""

    net: netaddr.IPNetwork | None
    group: int | None
    protocol: str | None
    low: int | None = None
    high: int | None = None


def _grants(
    inst: FilteredInstance,
    groups: dict[int, SecurityGroup],
    same_net: bool,
) -> frozenset[_Grant]:
    found: set[_Grant] = set()
    for nic in inst.nics:
        if nic.dhcp_server is not None:
            server = netaddr.IPNetwork(f"{nic.dhcp_server}/32")
            found.add(_Grant(server, None, "udp", 68, 68))
        if same_net:
            found.add(_Grant(nic.network_cidr, None, None))
    for group in inst.security_groups:
        for rule in groups[group].rules:
            ports: tuple[int | None, int | None] = (None, None)
            if rule.protocol in ("tcp", "udp"):
                ports = (rule.from_port, rule.to_port)
            found.add(
                _Grant(rule.cidr, rule.source_group, rule.protocol, *ports)
            )
    return frozenset(found)


def _cuts(
    grant: _Grant,
    dst: netaddr.IPAddress,
    members: frozenset[netaddr.IPAddress],
) -> list[FlowCut]:
    """The cuts for ``grant`` no longer admitting flows from ``members``
    (its group's, when it has one) to ``dst``."""
    single = grant.low if grant.low == grant.high else None
    nets: list[netaddr.IPNetwork | None]
    if grant.net is not None:
        nets = [None if grant.net.prefixlen == 0 else grant.net]
    elif len(members) > MAX_SOURCES:
        nets = [None]
    else:
        nets = [netaddr.IPNetwork(f"{a}/32") for a in sorted(members, key=int)]
    return [FlowCut(dst, net, grant.protocol, single) for net in nets]


def _admits(grant: _Grant, cut: FlowCut, host: HostFirewall) -> bool:
    """True if ``grant`` (of ``host``) admits every flow of ``cut``."""
    if grant.protocol is not None and grant.protocol != cut.protocol:
        return False
    if grant.low is not None and grant.high is not None:
        if cut.port is None or not grant.low <= cut.port <= grant.high:
            return False
    src = cut.src or _ANY
    if grant.net is not None:
        return src in grant.net
    return (
        grant.group is not None
        and src.prefixlen == 32
        and src.ip in host.members_of(grant.group)
    )


class _Change:
    """What changed between two states, computed once."""

    def __init__(
        self, old: HostFirewall, new: HostFirewall, same_net: bool
    ) -> None:
        self.old, self.new, self.same_net = old, new, same_net
        self.old_groups, self.new_groups = old.group_map(), new.group_map()
        self.changed_groups = {
            g
            for g, v in self.old_groups.items()
            if self.new_groups.get(g) != v
        }
        self.left = {
            g: old.members_of(g) - new.members_of(g)
            for g in old.members
            if old.members_of(g) != new.members_of(g)
        }
        #: groups with a rule whose source lost members
        self.touched = {
            g
            for g, group in self.old_groups.items()
            if any(r.source_group in self.left for r in group.rules)
        }

    def instance(
        self, inst: FilteredInstance, after: FilteredInstance
    ) -> list[FlowCut]:
        """The cuts for an instance filtered before and after."""
        quiet = after == inst and not self.changed_groups.intersection(
            inst.security_groups
        )
        if quiet and not self.touched.intersection(inst.security_groups):
            return []
        before = _grants(inst, self.old_groups, self.same_net)
        now = (
            before if quiet else _grants(after, self.new_groups, self.same_net)
        )
        kept = set(after.addresses)
        found: list[FlowCut] = []
        for dst in (a for a in inst.addresses if a in kept):
            for grant in before - now:
                found += _cuts(grant, dst, self._members(self.old, grant))
            for grant in before & now:
                if grant.group in self.left:
                    found += _cuts(grant, dst, self.left[grant.group])
        return [
            c for c in found if not any(_admits(g, c, self.new) for g in now)
        ]

    @staticmethod
    def _members(
        host: HostFirewall, grant: _Grant
    ) -> frozenset[netaddr.IPAddress]:
        if grant.group is None:
            return frozenset()
        return host.members_of(grant.group)


def flows_to_cut(
    old: HostFirewall, new: HostFirewall, allow_same_net_traffic: bool = True
) -> tuple[FlowCut, ...]:
    """The flows whose permission went away between ``old`` and
    ``new``, sorted; a cut of every flow to an address replaces the
    narrower ones to it."""
    change = _Change(old, new, allow_same_net_traffic)
    now = {inst.id: inst for inst in new.instances}
    cuts: set[FlowCut] = set()
    steady = not change.changed_groups and not change.touched
    for inst in old.instances:
        after = now.get(inst.id)
        if after is inst and steady:  # the same object: nothing changed
            continue
        kept = set(after.addresses) if after is not None else set()
        cuts.update(
            FlowCut(a, gone=True) for a in inst.addresses if a not in kept
        )
        if after is not None and kept:
            cuts.update(change.instance(inst, after))
    gone = {cut.dst for cut in cuts if cut.gone}
    cuts = {c for c in cuts if c.gone or c.dst not in gone}
    return tuple(sorted(cuts, key=FlowCut.sort_key))


class LiveFlow(Protocol):
    """A live conntrack entry's original direction (addresses as ints);
    ``dport`` None when the protocol has no ports."""

    @property
    def protocol(self) -> str: ...
    @property
    def src(self) -> int: ...
    @property
    def dst(self) -> int: ...
    @property
    def dport(self) -> int | None: ...


FlowT = TypeVar("FlowT", bound=LiveFlow)


def not_admitted(
    host: HostFirewall,
    flows: Iterable[FlowT],
    allow_same_net_traffic: bool = True,
) -> list[FlowT]:
    """The live flows to this host's instances that no grant of the
    destination instance admits (see the module notes)."""
    owner = {
        int(address): inst
        for inst in host.instances
        for address in inst.addresses
    }
    groups = host.group_map()
    grants: dict[int, frozenset[_Grant]] = {}
    found: list[FlowT] = []
    for flow in flows:
        inst = owner.get(flow.dst)
        if inst is None:
            continue
        if inst.id not in grants:
            grants[inst.id] = _grants(inst, groups, allow_same_net_traffic)
        ported = flow.protocol in ("tcp", "udp")
        cut = FlowCut(
            netaddr.IPAddress(flow.dst, 4),
            netaddr.IPNetwork(f"{netaddr.IPAddress(flow.src, 4)}/32"),
            flow.protocol,
            flow.dport if ported else None,
        )
        if not any(_admits(g, cut, host) for g in grants[inst.id]):
            found.append(flow)
    return found
