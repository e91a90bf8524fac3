"""The generic builder has room for the compute side: a compute-style
skeleton (nova-compute prefix, ``sg-fallback``, one chain per instance
dispatched from ``local`` by destination IP, set matches), the rule
grammar nova's IptablesFirewallDriver wrote, and one commit for a batch
of 1,000 instances. Not the compute firewall itself (issue 9): only what
the planner must offer it."""

from __future__ import annotations

import pytest

from flatnet import exception
from flatnet.plan import iptables as ipt
from tests.fakes_iptables import FakeIptables

COMPUTE = ipt.NOVA_SKELETON.extended(
    chains={"filter": ("sg-fallback",)},
    rules=(ipt.SkeletonRule("filter", "sg-fallback", "-j DROP"),),
)
#: nova IptablesFirewallDriver's per-instance rule forms, plus a set
#: match for a remote group (issue 9's ipset layout)
INSTANCE_RULES = (
    "-m state --state INVALID -j DROP",
    "-m state --state ESTABLISHED,RELATED -j ACCEPT",
    "-s 10.0.0.1 -p udp --sport 67 --dport 68 -j ACCEPT",
    "-s 10.0.0.0/16 -j ACCEPT",
    "-j ACCEPT -p tcp --dport 80 -s 0.0.0.0/0",
    "-j ACCEPT -p tcp -m multiport --dports 8000:8080 -s 10.1.0.0/16",
    "-j ACCEPT -p icmp -m icmp --icmp-type 8/0 -s 0.0.0.0/0",
    "-p tcp -m set --match-set fnt-sg-web src --dport 22 -j ACCEPT",
)


def compute_ruleset(count: int, extra: str | None = None) -> ipt.RuleSet:
    b = ipt.RuleSetBuilder("nova-compute", COMPUTE)
    for n in range(1, count + 1):
        chain = f"inst-{n}"
        b.add_chain("filter", chain)
        b.add(
            "filter", "local", f"-d 10.0.{n // 250}.{n % 250 + 2} -j ${chain}"
        )
        for rule in (*INSTANCE_RULES, *([extra] if extra else [])):
            b.add("filter", chain, rule)
        b.add("filter", chain, "-j $sg-fallback")
    return b.build()


# --- grammar ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("nova", "saved"),
    [
        (
            "-s 10.0.0.1 -p udp --sport 67 --dport 68 -j ACCEPT",
            "-s 10.0.0.1/32 -p udp -m udp --sport 67 --dport 68 -j ACCEPT",
        ),
        (
            "-j ACCEPT -p tcp --dport 80 -s 0.0.0.0/0",
            "-p tcp -m tcp --dport 80 -j ACCEPT",
        ),
        (
            "-j ACCEPT -p tcp -m multiport --dports 80:90 -s 10.1.0.0/16",
            "-s 10.1.0.0/16 -p tcp -m multiport --dports 80:90 -j ACCEPT",
        ),
        (
            "-j ACCEPT -p icmp -m icmp --icmp-type 8/0 -s 0.0.0.0/0",
            "-p icmp -m icmp --icmp-type 8/0 -j ACCEPT",
        ),
        (
            "-j ACCEPT -p icmp --icmp-type any",
            "-p icmp -m icmp --icmp-type any -j ACCEPT",
        ),
        (
            "-j ACCEPT -p udp --dport 53:60",
            "-p udp -m udp --dport 53:60 -j ACCEPT",
        ),
        (
            "-p tcp --syn -j ACCEPT",
            "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT",
        ),
        (
            "-m set --match-set fnt-sg-web src -j ACCEPT",
            "-m set --match-set fnt-sg-web src -j ACCEPT",
        ),
        (
            "-p tcp -m set ! --match-set fnt-sg-web src,dst -m tcp "
            "--dport 22 -j ACCEPT",
            "-p tcp -m set ! --match-set fnt-sg-web src,dst -m tcp "
            "--dport 22 -j ACCEPT",
        ),
        (
            "-p tcp -m set --match-set fnt-sg-web src --dport 22 -j ACCEPT",
            "-p tcp -m set --match-set fnt-sg-web src -m tcp --dport 22 "
            "-j ACCEPT",
        ),
    ],
)
def test_compute_rule_forms_get_the_iptables_save_spelling(nova, saved):
    # right column: iptables-save v1.8.9 (nft and legacy) for the left,
    # recorded on Debian 12; the contract suite re-checks it live
    assert ipt.canonical_rule(nova) == saved


def test_several_values_are_one_option():
    rule = ipt.parse_rule("-m set ! --match-set web src,dst -j ACCEPT")
    [(name, [option])] = rule.matches
    assert name == "set"
    assert option == ipt.Option("--match-set", "web src,dst", negated=True)
    assert option.values() == ["web", "src,dst"]


@pytest.mark.parametrize(
    "rule",
    [
        "--dport 80 -j ACCEPT",  # no -p: which match?
        "-p gre --dport 1 -j ACCEPT",  # gre has no port match
        "-j ACCEPT !",
        "! ! -s 10.0.0.1 -j ACCEPT",
        "-m set --match-set web src;reboot -j ACCEPT",
        "-m set --match-set web$(x) src -j ACCEPT",
    ],
)
def test_bad_compute_rules_are_rejected(rule):
    with pytest.raises(exception.InvalidIptablesRule):
        ipt.parse_rule(rule)


# --- a compute-style skeleton ------------------------------------------------
def test_compute_layout_is_novas():
    rs = compute_ruleset(2)
    filt = rs.tables["filter"]
    assert filt.chain("nova-compute-sg-fallback").rules == ("-j DROP",)
    assert filt.chain("nova-compute-local").rules == (
        "-d 10.0.0.3 -j nova-compute-inst-1",
        "-d 10.0.0.4 -j nova-compute-inst-2",
    )
    inst = filt.chain("nova-compute-inst-2").rules
    assert inst[0] == "-m state --state INVALID -j DROP"
    assert inst[-1] == "-j nova-compute-sg-fallback"
    assert ipt.Anchor("nova-filter-top", "-j nova-compute-local") in (
        filt.anchors
    )
    assert ipt.Anchor("INPUT", "-j nova-compute-INPUT") in filt.anchors


def test_instance_chains_and_the_network_hosts_coexist():
    fake = FakeIptables()
    network = ipt.RuleSetBuilder("nova-network").build()
    fake.apply(network)
    fake.apply(compute_ruleset(3))
    assert fake.tables["filter"]["nova-filter-top"] == [
        "-j nova-compute-local",
        "-j nova-network-local",
    ]
    assert ipt.diff_ruleset(network, fake.read()) == []
    assert ipt.diff_ruleset(compute_ruleset(3), fake.read()) == []


def test_builder_checks_jumps_tables_and_name_length():
    b = ipt.RuleSetBuilder("nova-compute", COMPUTE)
    b.add("filter", "local", "-d 10.0.0.9 -j $inst-9")
    with pytest.raises(exception.InvalidIptablesRule, match="missing"):
        b.build()
    b.add_chain("filter", "inst-9")
    assert b.add_chain("filter", "inst-9") == "nova-compute-inst-9"
    assert b.build().tables["filter"].chain("nova-compute-inst-9").rules == ()
    with pytest.raises(exception.InvalidIptablesRule, match="skeleton"):
        b.add_chain("raw", "inst-9")
    with pytest.raises(exception.InvalidIptablesRule, match="1-28"):
        b.add_chain("filter", "inst-12345678901")


def test_a_custom_skeleton_owns_only_what_it_names():
    chains = {"filter": ("INPUT", "guard")}
    skeleton = ipt.Skeleton(chains, ipt.wrapping_anchors(chains))
    b = ipt.RuleSetBuilder("fnt-x", skeleton)
    b.add("filter", "INPUT", "-j $guard")
    rs = b.build()
    assert set(rs.tables) == {"filter"}
    assert rs.lines() == [
        "*filter",
        "-A INPUT -j fnt-x-INPUT",
        "-A fnt-x-INPUT -j fnt-x-guard",
    ]
    fake = FakeIptables()
    fake.apply(rs)
    assert fake.tables["filter"]["INPUT"] == ["-j fnt-x-INPUT"]
    assert fake.tables["nat"] == {c: [] for c in ipt.BUILTIN_CHAINS["nat"]}


@pytest.mark.parametrize(
    "bad",
    [
        {"anchors": (ipt.SkeletonAnchor("filter", "mine", "-j $INPUT"),)},
        {"anchors": (ipt.SkeletonAnchor("raw", "OUTPUT", "-j $INPUT"),)},
        {"rules": (ipt.SkeletonRule("filter", "nosuch", "-j DROP"),)},
        {"shared": {"nat": ("nova-postrouting-bottom",)}},
    ],
)
def test_skeleton_is_validated(bad):
    with pytest.raises(exception.InvalidIptablesRule):
        ipt.Skeleton({"filter": ("INPUT",)}, **bad)


# --- batching ----------------------------------------------------------------
def test_a_batch_of_1000_instances_is_one_commit():
    fake = FakeIptables()
    fake.apply(compute_ruleset(0))
    fake.sent.clear()
    fake.apply(compute_ruleset(1000))  # 1,000 instances booted together
    assert [lines[0] for lines in fake.sent] == ["*filter"]
    assert len([c for c in fake.tables["filter"] if "-inst-" in c]) == 1000
    # a refresh touching every instance (a rule added to their group)
    fake.apply(compute_ruleset(1000, extra="-j ACCEPT -p tcp --dport 443"))
    assert [lines[0] for lines in fake.sent] == ["*filter", "*filter"]
    assert (
        "-p tcp -m tcp --dport 443 -j ACCEPT"
        in (fake.tables["filter"]["nova-compute-inst-500"])
    )
    # all unfiltered at once: every chain and dispatch rule goes, one commit
    fake.apply(compute_ruleset(0))
    assert len(fake.sent) == 3
    assert not [c for c in fake.tables["filter"] if "-inst-" in c]
    assert fake.tables["filter"]["nova-compute-local"] == []
    assert ipt.diff_ruleset(compute_ruleset(0), fake.read()) == []


def test_one_more_instance_is_a_small_delta():
    fake = FakeIptables()
    fake.apply(compute_ruleset(300))
    fake.sent.clear()
    fake.apply(compute_ruleset(301))
    [payload] = fake.sent
    assert payload[1] == ":nova-compute-inst-301 - [0:0]"
    assert payload[-2] == (
        "-A nova-compute-local -d 10.0.1.53 -j nova-compute-inst-301"
    )
    assert len(payload) == 2 + 1 + len(INSTANCE_RULES) + 1 + 1
