"""flows_to_cut: which established flows lose their permission."""

from __future__ import annotations

import netaddr

from flatnet.linux.conntrack import Entry
from flatnet.plan.firewall_flows import (
    MAX_SOURCES,
    FlowCut,
    flows_to_cut,
    not_admitted,
)
from tests.firewall_data import group, host, instance, rule


def ip(text):
    return netaddr.IPAddress(text)


def net(text):
    return netaddr.IPNetwork(text)


WEB = group(1, rule("tcp", "80", "0.0.0.0/0"), rule("tcp", "22", source=2))
OPS = group(2)


def state(*insts, groups=(WEB, OPS), remote=()):
    return host(insts, groups, remote=remote)


def test_nothing_changed_nothing_to_cut():
    a = state(instance(1, "10.0.0.2"), instance(2, "10.0.0.3", groups=(2,)))
    b = state(instance(1, "10.0.0.2"), instance(2, "10.0.0.3", groups=(2,)))
    assert flows_to_cut(a, b) == ()
    # an instance added, or a member joining, takes nothing away
    c = state(*b.instances, instance(3, "10.0.0.4", groups=(2,)))
    assert flows_to_cut(b, c) == ()


def test_unfiltered_instance_loses_every_flow_to_its_addresses():
    a = state(instance(1, "10.0.0.2", "10.0.0.9"), instance(2, "10.0.0.3"))
    b = state(instance(2, "10.0.0.3"))
    assert flows_to_cut(a, b) == (
        FlowCut(ip("10.0.0.2"), gone=True),
        FlowCut(ip("10.0.0.9"), gone=True),
    )


def test_a_removed_rule_cuts_its_source_protocol_and_port():
    a = state(instance(1, "10.0.0.2"))
    narrower = group(1, rule("tcp", "22", source=2))
    b = state(instance(1, "10.0.0.2"), groups=(narrower, OPS))
    assert flows_to_cut(a, b) == (FlowCut(ip("10.0.0.2"), None, "tcp", 80),)
    ranged = group(1, rule("udp", "1000:2000", "10.1.0.0/16"))
    c = state(instance(1, "10.0.0.2"), groups=(ranged, OPS))
    assert flows_to_cut(c, b) == (
        FlowCut(ip("10.0.0.2"), net("10.1.0.0/16"), "udp"),
    )


def test_a_member_leaving_cuts_its_flows_to_every_user():
    members = [
        instance(10, "10.0.1.10", groups=(2,)),
        instance(11, "10.0.1.11", groups=(2,)),
    ]
    users = [instance(1, "10.0.0.2"), instance(2, "10.0.0.3")]
    a = state(*users, remote=members)
    b = state(*users, remote=members[1:])
    src = net("10.0.1.10/32")
    assert flows_to_cut(a, b) == (
        FlowCut(ip("10.0.0.2"), src, "tcp", 22),
        FlowCut(ip("10.0.0.3"), src, "tcp", 22),
    )


def test_a_cut_still_admitted_elsewhere_is_dropped():
    wide = group(3, rule("tcp", "1:65535", "10.0.1.0/24"))
    users = [instance(1, "10.0.0.2", groups=(1, 3))]
    a = state(
        *users,
        groups=(WEB, OPS, wide),
        remote=[instance(10, "10.0.1.10", groups=(2,))],
    )
    b = state(*users, groups=(WEB, OPS, wide))
    assert flows_to_cut(a, b) == ()


def test_same_net_and_dhcp_grants_count():
    a = state(instance(1, "10.0.0.2", groups=()))
    moved = state(instance(1, "10.0.0.2", groups=(), dhcp="10.0.0.254"))
    # the old server's replies: still admitted by the same-net accept
    assert flows_to_cut(a, moved) == ()
    assert flows_to_cut(a, moved, allow_same_net_traffic=False) == (
        FlowCut(ip("10.0.0.2"), net("10.0.0.1/32"), "udp", 68),
    )
    other_net = state(instance(1, "10.0.0.2", groups=(), cidr="10.0.0.0/25"))
    assert flows_to_cut(a, other_net) == (
        FlowCut(ip("10.0.0.2"), net("10.0.0.0/24")),
    )


def test_a_big_group_is_cut_by_destination_not_by_thousands_of_sources():
    members = [
        instance(100 + n, f"10.0.2.{n}", groups=(2,))
        for n in range(MAX_SOURCES + 1)
    ]
    a = state(instance(1, "10.0.0.2"), remote=members)
    b = state(
        instance(1, "10.0.0.2"),
        groups=(group(1, rule("tcp", "80", "0.0.0.0/0")), OPS),
        remote=members,
    )
    assert flows_to_cut(a, b) == (FlowCut(ip("10.0.0.2"), None, "tcp", 22),)


def test_not_admitted_judges_live_flows_against_the_state():
    """At start: flows to an instance that no grant admits any more
    (source, protocol, port; group members), and only those."""
    web = group(1, rule("tcp", "80", "0.0.0.0/0"), rule("tcp", "22", source=2))
    now = state(
        instance(1, "10.0.0.2", dhcp=None),
        instance(2, "10.0.0.3", groups=(2,)),
        groups=(web, OPS),
    )

    def flow(proto, src, dst, dport):
        s, d = int(ip(src)), int(ip(dst))
        return Entry(proto, s, d, d, s, 40000 if dport else None, dport)

    flows = [
        flow("tcp", "192.0.2.1", "10.0.0.2", 80),  # anyone to 80
        flow("tcp", "10.0.0.3", "10.0.0.2", 22),  # a member to 22
        flow("tcp", "192.0.2.1", "10.0.0.2", 22),  # not a member: cut
        flow("udp", "192.0.2.1", "10.0.0.2", 53),  # no udp rule: cut
        flow("icmp", "192.0.2.1", "10.0.0.2", None),  # no icmp: cut
        flow("tcp", "10.0.0.2", "192.0.2.1", 22),  # its own: kept
        flow("tcp", "192.0.2.1", "10.0.0.99", 22),  # not ours: kept
        flow("udp", "10.0.0.5", "10.0.0.3", 53),  # same net (default)
        flow("udp", "10.0.0.1", "10.0.0.3", 68),  # its DHCP server
    ]
    assert not_admitted(now, flows) == flows[2:5]
    closed = not_admitted(now, flows, allow_same_net_traffic=False)
    assert closed == [*flows[2:5], flows[7]]
