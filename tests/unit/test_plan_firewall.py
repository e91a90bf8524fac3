"""plan/firewall: nova's IptablesFirewallDriver layout (literal mode
rule for rule), the set-based remote groups, determinism and limits."""

from __future__ import annotations

import random

import netaddr
import pytest

from flatnet import exception
from flatnet.plan import firewall as fw
from flatnet.plan import iptables as ipt
from flatnet.plan.firewall_model import FilteredInstance, FilteredNic
from tests.fakes_iptables import FakeIptables
from tests.firewall_data import addresses, group, host, instance, mac_for, rule

LITERAL = fw.FirewallSettings(remote_group_sets=False)
SETS = fw.FirewallSettings()


def static_filters_host():
    """nova test_static_filters (nova/tests/unit/virt/libvirt/
    test_firewall.py): instance 7 in 'testgroup' (rules r1-r5, r4 and r5
    granting 'testsourcegroup'), one member of the source group."""
    testgroup = group(
        1,
        rule("icmp", "-1:-1", "192.168.11.0/24", rule_id=1),
        rule("icmp", "8:-1", "192.168.11.0/24", rule_id=2),
        rule("tcp", "80:81", "192.168.10.0/24", rule_id=3),
        rule("tcp", "80:81", source=2, rule_id=4),
        rule(None, None, source=2, rule_id=5),
        name="testgroup",
    )
    source = group(2, name="testsourcegroup")
    inst = instance(
        7, "192.168.0.100", cidr="192.168.0.0/24", dhcp="192.168.0.1"
    )
    member = instance(8, "192.168.0.101", groups=(2,), cidr="192.168.0.0/24")
    return host([inst], [testgroup, source], remote=[member])


def test_literal_mode_is_novas_instance_chain():
    # nova virt/firewall.py instance_rules: basic, dhcp, project network,
    # security group rules in DB order, then $sg-fallback; the
    # iptables-restore lines nova wrote (doc/nova-compute-reference.md)
    plan = fw.firewall_plan(static_filters_host(), LITERAL)
    filt = plan.ruleset.tables["filter"]
    lines = [
        f"[0:0] -A nova-compute-inst-7 {r}"
        for r in filt.chain("nova-compute-inst-7").rules
    ]
    assert lines == [
        "[0:0] -A nova-compute-inst-7 -m state --state INVALID -j DROP",
        "[0:0] -A nova-compute-inst-7 -m state --state ESTABLISHED,RELATED "
        "-j ACCEPT",
        "[0:0] -A nova-compute-inst-7 -s 192.168.0.1 -p udp --sport 67 "
        "--dport 68 -j ACCEPT",
        "[0:0] -A nova-compute-inst-7 -s 192.168.0.0/24 -j ACCEPT",
        "[0:0] -A nova-compute-inst-7 -j ACCEPT -p icmp -s 192.168.11.0/24",
        "[0:0] -A nova-compute-inst-7 -j ACCEPT -p icmp -m icmp "
        "--icmp-type 8 -s 192.168.11.0/24",
        "[0:0] -A nova-compute-inst-7 -j ACCEPT -p tcp -m multiport "
        "--dports 80:81 -s 192.168.10.0/24",
        "[0:0] -A nova-compute-inst-7 -j ACCEPT -p tcp -m multiport "
        "--dports 80:81 -s 192.168.0.101",
        "[0:0] -A nova-compute-inst-7 -j ACCEPT -s 192.168.0.101",
        "[0:0] -A nova-compute-inst-7 -j nova-compute-sg-fallback",
    ]
    assert filt.chain("nova-compute-local").rules == (
        "-d 192.168.0.100 -j nova-compute-inst-7",
    )
    assert filt.chain("nova-compute-sg-fallback").rules == ("-j DROP",)
    # dhcp_create: the DHCP request accept in wrapped INPUT and FORWARD
    assert filt.chain("nova-compute-INPUT").rules == (fw.DHCP_REQUEST_RULE,)
    assert filt.chain("nova-compute-FORWARD").rules == (fw.DHCP_REQUEST_RULE,)
    assert (
        ipt.Anchor("nova-filter-top", "-j nova-compute-local") in filt.anchors
    )
    assert ipt.Anchor("FORWARD", "-j nova-filter-top") in filt.anchors
    assert plan.ipsets == ()


def test_literal_mode_has_one_rule_per_member():
    members = [instance(n, f"192.168.0.{n}", groups=(2,)) for n in (20, 9, 30)]
    plan = fw.firewall_plan(
        host(
            [instance(7, "192.168.0.100")],
            [group(1, rule("udp", "53", source=2)), group(2)],
            remote=members,
        ),
        LITERAL,
    )
    rules = plan.ruleset.tables["filter"].chain("nova-compute-inst-7").rules
    assert [r for r in rules if "--dport 53" in r] == [
        "-j ACCEPT -p udp --dport 53 -s 192.168.0.9",
        "-j ACCEPT -p udp --dport 53 -s 192.168.0.20",
        "-j ACCEPT -p udp --dport 53 -s 192.168.0.30",
    ]


def test_set_mode_matches_one_set_per_source_group():
    plan = fw.firewall_plan(static_filters_host(), SETS)
    rules = plan.ruleset.tables["filter"].chain("nova-compute-inst-7").rules
    assert rules[6:9] == (
        "-j ACCEPT -p tcp -m multiport --dports 80:81 -s 192.168.10.0/24",
        "-j ACCEPT -p tcp -m multiport --dports 80:81 "
        "-m set --match-set nova-compute-sg-2 src",
        "-j ACCEPT -m set --match-set nova-compute-sg-2 src",
    )
    assert plan.ipsets == (
        fw.IpSetSpec("nova-compute-sg-2", frozenset({"192.168.0.101"})),
    )
    # the saved spelling, so verify compares like with like
    assert ipt.canonical_rule(rules[7]) == (
        "-p tcp -m multiport --dports 80:81 -m set --match-set "
        "nova-compute-sg-2 src -j ACCEPT"
    )


def test_a_new_member_changes_the_set_not_the_rules():
    def plan(n_members, settings):
        members = [
            instance(100 + n, f"10.0.1.{n}", groups=(2,))
            for n in range(n_members)
        ]
        users = [instance(n, f"10.0.0.{n + 2}") for n in range(20)]
        groups = [group(1, rule("tcp", "22", source=2)), group(2)]
        return fw.firewall_plan(host(users, groups, remote=members), settings)

    before, after = plan(50, SETS), plan(51, SETS)
    assert before.ruleset == after.ruleset
    [old_set], [new_set] = before.ipsets, after.ipsets
    assert new_set.members - old_set.members == {"10.0.1.50"}
    # nova's layout: every chain using the group changes
    fake = FakeIptables()
    fake.apply(plan(50, LITERAL).ruleset)
    fake.sent.clear()
    fake.apply(plan(51, LITERAL).ruleset)
    [payload] = fake.sent
    assert len([line for line in payload if "10.0.1.50" in line]) == 20


def test_nova_rule_forms():
    # nova/tests/unit/virt/test_firewall.py: _build_icmp_rule,
    # _build_tcp_udp_rule expectations
    assert fw.port_args(rule("icmp", "-1:-1")) == ["-j ACCEPT", "-p", "icmp"]
    assert fw.port_args(rule("icmp", "123:-1"))[3:] == [
        "-m",
        "icmp",
        "--icmp-type",
        "123",
    ]
    assert fw.port_args(rule("icmp", "3:4"))[3:] == [
        "-m",
        "icmp",
        "--icmp-type",
        "3/4",
    ]
    assert fw.port_args(rule("tcp", "123:123"))[3:] == ["--dport", "123"]
    assert fw.port_args(rule("tcp", "123:456"))[3:] == [
        "-m",
        "multiport",
        "--dports",
        "123:456",
    ]
    assert fw.port_args(rule(None, cidr="10.0.0.0/8")) == ["-j ACCEPT"]
    assert fw.instance_chain(42) == "inst-42"


def test_no_groups_ends_in_the_fallback_and_same_net_is_optional():
    inst = instance(3, "10.0.0.3", groups=())
    with_net = fw.instance_rules(inst, host([inst], []), SETS)
    assert with_net[-1] == "-j $sg-fallback"
    assert "-s 10.0.0.0/24 -j ACCEPT" in with_net
    closed = fw.FirewallSettings(allow_same_net_traffic=False)
    assert "-s 10.0.0.0/24 -j ACCEPT" not in fw.instance_rules(
        inst, host([inst], []), closed
    )


def test_multinic_dispatch_and_dhcp_request_rules():
    # nova test_multinic_iptables: 5 networks x 2 v4 addresses gives
    # 1 x 2 x 5 dispatch rules + 2 DHCP request rules
    nics = tuple(
        FilteredNic(
            netaddr.EUI(mac_for(n)),
            (
                netaddr.IPAddress(f"10.{n}.0.2"),
                netaddr.IPAddress(f"10.{n}.0.3"),
            ),
            netaddr.IPNetwork(f"10.{n}.0.0/24"),
            netaddr.IPAddress("1.1.1.1") if n == 0 else None,
        )
        for n in range(5)
    )
    inst = FilteredInstance(9, "uuid-9", nics, ())
    filt = fw.firewall_plan(host([inst], []), SETS).ruleset.tables["filter"]
    network_rules = (
        len(filt.chain("nova-compute-local").rules)
        + len(filt.chain("nova-compute-INPUT").rules)
        + len(filt.chain("nova-compute-FORWARD").rules)
    )
    assert network_rules == 1 * 2 * 5 + 2
    rules = filt.chain("nova-compute-inst-9").rules
    assert [r for r in rules if "--sport 67" in r] == [
        "-s 1.1.1.1 -p udp --sport 67 --dport 68 -j ACCEPT"
    ]
    assert len([r for r in rules if r.endswith("/24 -j ACCEPT")]) == 5


def test_no_dhcp_server_no_request_rule_and_empty_host_is_the_skeleton():
    inst = instance(1, "10.0.0.2", groups=(), dhcp=None)
    filt = fw.firewall_plan(host([inst], []), SETS).ruleset.tables["filter"]
    assert filt.chain("nova-compute-INPUT").rules == ()
    empty = fw.firewall_plan(host([], []), SETS).ruleset
    skeleton = ipt.RuleSetBuilder("nova-compute", fw.COMPUTE_SKELETON).build()
    assert empty == skeleton


def test_rules_follow_rule_ids_across_groups_and_duplicates_go():
    a = group(
        1,
        rule("tcp", "22", "0.0.0.0/0", rule_id=5),
        rule("tcp", "80", "0.0.0.0/0", rule_id=1),
    )
    b = group(
        2,
        rule("tcp", "443", "0.0.0.0/0", rule_id=3),
        rule("tcp", "22", "0.0.0.0/0", rule_id=7),
    )
    inst = instance(1, "10.0.0.2", groups=(1, 2))
    rules = fw.instance_rules(inst, host([inst], [a, b]), SETS)
    assert [
        r.split("--dport ")[1].split(" ")[0] for r in rules if "--dport" in r
    ] == ["68", "80", "443", "22"]


def build_with_builder(h, settings):
    """The same RuleSet through RuleSetBuilder.add for every rule (the
    slow, fully checked path) to compare with firewall_plan's."""
    b = ipt.RuleSetBuilder(settings.prefix, fw.COMPUTE_SKELETON)
    b.add("filter", "INPUT", fw.DHCP_REQUEST_RULE)
    b.add("filter", "FORWARD", fw.DHCP_REQUEST_RULE)
    for inst in sorted(h.instances, key=lambda i: i.id):
        chain = fw.instance_chain(inst.id)
        b.add_chain("filter", chain)
        for address in inst.addresses:
            b.add("filter", "local", f"-d {address} -j ${chain}")
        for r in fw.instance_rules(inst, h, settings):
            b.add("filter", chain, r)
    return b.build()


@pytest.mark.parametrize("settings", [SETS, LITERAL], ids=["sets", "literal"])
def test_fast_path_equals_the_builder_and_order_does_not_matter(settings):
    rng = random.Random(7)
    groups = [
        group(
            1,
            rule("tcp", "22", source=2, rule_id=1),
            rule("icmp", "8:0", "10.9.0.0/16", rule_id=2),
        ),
        group(2, rule("udp", "1000:2000", "0.0.0.0/0", rule_id=3)),
        group(3, rule(None, None, source=3, rule_id=4)),
    ]
    insts = [
        instance(
            n,
            f"10.0.{n // 200}.{n % 200 + 2}",
            groups=rng.sample([1, 2, 3], rng.randint(0, 3)),
        )
        for n in range(1, 60)
    ]
    plan = fw.firewall_plan(host(insts, groups), settings)
    assert plan.ruleset == build_with_builder(host(insts, groups), settings)
    rng.shuffle(insts)
    again = fw.firewall_plan(host(insts, reversed(groups)), settings)
    assert again == plan


def test_names_stay_within_kernel_limits():
    with pytest.raises(exception.InvalidIptablesRule, match="1-28"):
        fw.firewall_plan(
            host([instance(10**12, "10.0.0.2", groups=())], []), SETS
        )
    big = 10**13
    with pytest.raises(exception.InvalidInput, match="longer than 29"):
        fw.firewall_plan(
            host(
                [instance(1, "10.0.0.2")],
                [group(1, rule("tcp", "1", source=big)), group(big)],
            ),
            SETS,
        )
    assert len(fw.remote_group_set("nova-compute", 10**12)) == 29


def test_a_foreign_prefix_is_validated():
    with pytest.raises(exception.InvalidIptablesRule):
        fw.FirewallSettings(prefix="nova-compute-too-long")


def test_sets_only_for_groups_used_as_sources_here():
    groups = [
        group(1, rule("tcp", "22", source=2)),
        group(2),
        group(3, rule("tcp", "1", source=4)),
        group(4),
    ]
    plan = fw.firewall_plan(
        host(
            [instance(1, "10.0.0.2", groups=(1,))],
            groups,
            members={2: addresses("10.0.5.5")},
        ),
        SETS,
    )
    assert [s.name for s in plan.ipsets] == ["nova-compute-sg-2"]
    empty = fw.firewall_plan(
        host([instance(1, "10.0.0.2", groups=(1,))], groups, members={}), SETS
    )
    assert empty.ipsets == (fw.IpSetSpec("nova-compute-sg-2"),)


def test_one_instance_more_is_its_chain_and_its_dispatch_only():
    """+1 at 300 instances: the iptables delta (what the restore backend
    sends with --noflush) creates the new chain and appends its one
    ``local`` rule; no other chain is touched. -1 is the reverse."""
    web = group(1, rule("tcp", "80", "0.0.0.0/0"), rule("tcp", "22", source=1))
    base = [
        instance(n, f"10.0.{n // 200}.{n % 200 + 2}", groups=(1,))
        for n in range(1, 301)
    ]
    new = instance(301, "10.0.9.9", groups=(2,))
    before = fw.firewall_plan(host(base, [web, group(2)]), SETS)
    after = fw.firewall_plan(host([*base, new], [web, group(2)]), SETS)
    delta = ipt.plan_delta(
        before.ruleset.tables["filter"], after.ruleset.tables["filter"]
    )
    assert delta is not None
    assert [c.name for c in delta.rewrite] == ["nova-compute-inst-301"]
    assert [op.line() for op in delta.edits] == [
        "-A nova-compute-local -d 10.0.9.9 -j nova-compute-inst-301"
    ]
    assert delta.delete_chains == ()
    assert delta.anchor_ops == ()
    back = ipt.plan_delta(
        after.ruleset.tables["filter"], before.ruleset.tables["filter"]
    )
    assert back is not None
    assert back.rewrite == ()
    assert back.delete_chains == ("nova-compute-inst-301",)
    assert [op.line() for op in back.edits] == [
        "-D nova-compute-local -d 10.0.9.9/32 -j nova-compute-inst-301"
    ]
