"""flatnet.plan.iptables: model, wrapping, canonical text, parse, diff."""

from __future__ import annotations

import pytest

from flatnet import exception
from flatnet.plan import iptables as ipt
from tests.fakes_iptables import FakeIptables

P = "nova-network"


def skeleton() -> ipt.RuleSet:
    return ipt.RuleSetBuilder(P).build()


# --- names ----------------------------------------------------------------
def test_chain_name_limit_is_28():
    assert ipt.MAX_CHAIN_NAME == 28
    assert ipt.validate_chain_name("a" * 28) == "a" * 28
    with pytest.raises(exception.InvalidIptablesRule, match="1-28"):
        ipt.validate_chain_name("a" * 29)


@pytest.mark.parametrize("name", ["", "a b", "a\nb", "-x", "x;y", "x$y"])
def test_bad_chain_names(name):
    with pytest.raises(exception.InvalidIptablesRule):
        ipt.validate_chain_name(name)


def test_longest_wrapped_name_fits():
    prefix = "nova-api-metadat"  # nova's 16-char truncation
    assert ipt.wrap(prefix, "POSTROUTING") == "nova-api-metadat-POSTROUTING"
    ipt.RuleSetBuilder(prefix).build()
    with pytest.raises(exception.InvalidIptablesRule, match="prefix"):
        ipt.RuleSetBuilder("x" * 17)


@pytest.mark.parametrize("prefix", ["nova", "nova-filter", "nova-postrouting"])
def test_prefix_may_not_claim_shared_chains(prefix):
    with pytest.raises(exception.InvalidIptablesRule, match="shared"):
        ipt.validate_prefix(prefix)


def test_ownership_is_exact_not_substring():
    assert ipt.is_owned_chain("nova-network-INPUT", P)
    assert not ipt.is_owned_chain("nova-networkx-INPUT", P)
    assert not ipt.is_owned_chain("my-nova-network-INPUT", P)
    assert not ipt.is_owned_chain("nova-filter-top", "nova")


# --- rules ----------------------------------------------------------------
@pytest.mark.parametrize(
    "rule",
    [
        "-j ACCEPT\n-A INPUT -j DROP",
        "-s 10.0.0.1 -j ACCEPT -m comment --comment 'x y'",
        "-j ACCEPT;",
        "-s 10.0.0.1  -j ACCEPT",
        "-s",
        "--dport 80 -j ACCEPT",
        "-j ACCEPT $(reboot)",
        '-m comment --comment "a" -j ACCEPT',
    ],
)
def test_injection_and_garbage_rejected(rule):
    with pytest.raises(exception.InvalidIptablesRule):
        ipt.Chain("nova-network-x", (rule,))


@pytest.mark.parametrize(
    ("nova", "saved"),
    [
        (
            "-s 10.0.0.0/24 -d 0.0.0.0/0 -j SNAT --to-source 172.16.0.1 "
            "-o eth1",
            "-s 10.0.0.0/24 -o eth1 -j SNAT --to-source 172.16.0.1",
        ),
        (
            "-s 10.0.0.1 -j SNAT --to 10.10.10.10 -d 10.0.0.1",
            "-s 10.0.0.1/32 -d 10.0.0.1/32 -j SNAT --to-source 10.10.10.10",
        ),
        (
            "-d 10.10.10.10 -j DNAT --to 10.0.0.1",
            "-d 10.10.10.10/32 -j DNAT --to-destination 10.0.0.1",
        ),
        (
            "-s 0.0.0.0/0 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 "
            "-j REDIRECT --to-ports 8775",
            "-d 169.254.169.254/32 -p tcp -m tcp --dport 80 "
            "-j REDIRECT --to-ports 8775",
        ),
        (
            "-s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack ! --ctstate DNAT "
            "-j ACCEPT",
            "-s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack ! --ctstate DNAT "
            "-j ACCEPT",
        ),
        (
            "-m state --state ESTABLISHED,RELATED,INVALID -j ACCEPT",
            "-m state --state INVALID,RELATED,ESTABLISHED -j ACCEPT",
        ),
        (
            "-p UDP -i br0 -s 10.0.0.7/24 -j DROP",
            "-s 10.0.0.0/24 -i br0 -p udp -j DROP",
        ),
        ("! -s 10.0.0.0/8 -j ACCEPT", "! -s 10.0.0.0/8 -j ACCEPT"),
    ],
)
def test_canonical_rule_is_iptables_save_spelling(nova, saved):
    # the right column is what iptables-save v1.8.9 printed (both
    # backends) for the left column, recorded on Debian 12
    assert ipt.canonical_rule(nova) == saved


# --- structure (nova linux_net.IptablesManager) ---------------------------
def test_skeleton_lines_are_novas():
    lines = skeleton().lines()
    filter_part = lines[1 : lines.index("*nat")]
    assert filter_part == [
        "-A FORWARD -j nova-filter-top",
        "-A OUTPUT -j nova-filter-top",
        "-A nova-filter-top -j nova-network-local",
        "-A INPUT -j nova-network-INPUT",
        "-A OUTPUT -j nova-network-OUTPUT",
        "-A FORWARD -j nova-network-FORWARD",
    ]
    assert "-A nova-postrouting-bottom -j nova-network-snat" in lines
    assert "-A nova-network-snat -j nova-network-float-snat" in lines
    assert "-A POSTROUTING -j nova-network-POSTROUTING" in lines
    assert "*mangle" in lines


def test_builder_wraps_dollar_names_and_skips_duplicates():
    b = ipt.RuleSetBuilder(P)
    b.add("filter", "FORWARD", "-s 1.2.3.4/5 -j DROP")
    b.add("filter", "FORWARD", "-s 1.2.3.4/5 -j DROP")
    b.add("filter", "local", "-j $INPUT")
    rs = b.build()
    assert rs.tables["filter"].chain("nova-network-FORWARD").rules == (
        "-s 1.2.3.4/5 -j DROP",
    )
    assert rs.tables["filter"].chain("nova-network-local").rules == (
        "-j nova-network-INPUT",
    )
    with pytest.raises(exception.InvalidIptablesRule, match="unknown"):
        b.add("filter", "nosuch", "-j ACCEPT")


def test_build_is_deterministic():
    assert skeleton() == skeleton()
    assert skeleton().lines() == skeleton().lines()


# --- parsing ----------------------------------------------------------------
SAVE = """# Generated by iptables-save v1.8.9
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [3:180]
:nova-network-snat - [0:0]
[5:300] -A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE
-A nova-network-snat -s 10.0.0.0/24 -o eth1 -j SNAT --to-source 1.2.3.4
COMMIT
# Completed
*filter
:INPUT DROP [0:0]
COMMIT
"""


def test_parse_save():
    tables = ipt.parse_save(SAVE)
    assert set(tables) == {"nat", "filter"}
    assert tables["nat"].chains == {
        "PREROUTING": (),
        "POSTROUTING": ("-s 10.9.0.0/16 -j MASQUERADE",),
        "nova-network-snat": (
            "-s 10.0.0.0/24 -o eth1 -j SNAT --to-source 1.2.3.4",
        ),
    }
    assert tables["filter"].chains == {"INPUT": ()}


def test_parse_save_rejects_rules_outside_tables():
    with pytest.raises(exception.InvalidIptablesRule):
        ipt.parse_save("-A INPUT -j ACCEPT\n")


def test_render_parse_round_trip_through_fake():
    fake = FakeIptables()
    rs = skeleton()
    fake.apply(rs)
    text = "".join(
        "".join(
            f"*{t.name}\n"
            + "".join(f":{c} - [0:0]\n" for c in t.chains)
            + "".join(
                f"-A {c} {r}\n" for c, rules in t.chains.items() for r in rules
            )
            + "COMMIT\n"
        )
        for t in fake.read().values()
    )
    assert ipt.parse_save(text) == fake.read()
    assert ipt.diff_ruleset(rs, ipt.parse_save(text)) == []


# --- planning ---------------------------------------------------------------
def test_plan_from_empty_creates_everything_in_order():
    plans = ipt.plan_ruleset(skeleton(), {})
    filt = plans[0].restore_lines()
    assert filt[0] == "*filter"
    assert filt[-1] == "COMMIT"
    assert filt[1] == ":nova-filter-top - [0:0]"
    assert "-I FORWARD 1 -j nova-filter-top" in filt
    assert "-I FORWARD 2 -j nova-network-FORWARD" in filt
    nat = plans[1].restore_lines()
    assert "-A POSTROUTING -j nova-postrouting-bottom" in nat
    # builtins are never declared: that would reset policy and counters
    assert not any(
        line.startswith((":INPUT", ":FORWARD", ":POSTROUTING"))
        for line in filt + nat
    )


def test_plan_is_empty_when_live_equals_desired():
    fake = FakeIptables()
    fake.apply(skeleton())
    assert all(p.empty for p in ipt.plan_ruleset(skeleton(), fake.read()))
    assert fake.apply(skeleton()) == []


def test_plan_edits_only_the_chain_that_differs():
    fake = FakeIptables()
    fake.apply(skeleton())
    b = ipt.RuleSetBuilder(P)
    b.add("nat", "snat", "-s 10.0.0.0/24 -j SNAT --to-source 1.2.3.4")
    plans = [
        p for p in ipt.plan_ruleset(b.build(), fake.read()) if not p.empty
    ]
    assert len(plans) == 1
    assert plans[0].restore_lines() == [
        "*nat",
        "-A nova-network-snat -s 10.0.0.0/24 -j SNAT --to-source 1.2.3.4",
        "COMMIT",
    ]


def _snat_rules(count: int, skip: int = -1) -> ipt.RuleSet:
    b = ipt.RuleSetBuilder(P)
    for n in range(count):
        if n != skip:
            b.add("nat", "snat", f"-s 10.0.{n}.0/24 -j SNAT --to 1.2.3.4")
    return b.build()


def test_small_change_in_a_long_chain_is_an_in_place_edit():
    fake = FakeIptables()
    fake.apply(_snat_rules(100))
    plan = ipt.plan_ruleset(_snat_rules(100, skip=50), fake.read())[1]
    assert plan.rewrite == ()
    assert plan.restore_lines() == [
        "*nat",
        "-D nova-network-snat -s 10.0.50.0/24 -j SNAT --to-source 1.2.3.4",
        "COMMIT",
    ]
    fake.apply(_snat_rules(100, skip=50))
    fake.apply(_snat_rules(100))
    assert ipt.diff_ruleset(_snat_rules(100), fake.read()) == []
    assert fake.tables["nat"]["nova-network-snat"][51] == (
        "-s 10.0.50.0/24 -j SNAT --to-source 1.2.3.4"
    )


def test_big_change_or_duplicate_rules_mean_a_rewrite():
    fake = FakeIptables()
    fake.apply(_snat_rules(20))
    plan = ipt.plan_ruleset(_snat_rules(2), fake.read())[1]
    assert [c.name for c in plan.rewrite] == ["nova-network-snat"]
    fake.command(
        "nat",
        "-I nova-network-snat 1 -s 10.0.5.0/24 -j SNAT --to-source 1.2.3.4",
    )
    plan = ipt.plan_ruleset(_snat_rules(20), fake.read())[1]
    assert [c.name for c in plan.rewrite] == ["nova-network-snat"]
    fake.apply(_snat_rules(20), verify=True)  # drift: re-read first
    assert ipt.diff_ruleset(_snat_rules(20), fake.read()) == []


def test_foreign_rules_keep_order_and_stale_ours_go():
    fake = FakeIptables()
    fake.command("filter", "-A INPUT -s 10.9.9.1/32 -j ACCEPT")
    fake.apply(skeleton())
    fake.command("filter", "-A INPUT -s 10.9.9.2/32 -j ACCEPT")
    fake.command("filter", "-I INPUT 1 -s 10.9.9.0/32 -j ACCEPT")
    fake.command("filter", ":nova-network-old - [0:0]")
    fake.command("filter", "-A INPUT -j nova-network-old")
    fake.command("filter", "-A INPUT -j nova-network-INPUT")  # duplicate
    fake.command("filter", "-D INPUT -j nova-network-INPUT")
    fake.command("filter", "-F nova-network-INPUT")
    diff = ipt.diff_ruleset(skeleton(), fake.read())
    assert "-[filter] -A INPUT -j nova-network-old" in diff
    fake.apply(skeleton(), verify=True)
    assert fake.tables["filter"]["INPUT"] == [
        "-s 10.9.9.0/32 -j ACCEPT",
        "-s 10.9.9.1/32 -j ACCEPT",
        "-s 10.9.9.2/32 -j ACCEPT",
        "-j nova-network-INPUT",
    ]
    assert "nova-network-old" not in fake.tables["filter"]
    assert ipt.diff_ruleset(skeleton(), fake.read()) == []


def test_missing_jump_is_reinserted_after_its_predecessor():
    fake = FakeIptables()
    fake.apply(skeleton())
    fake.command("filter", "-I FORWARD 1 -s 10.9.9.9/32 -j DROP")
    fake.command("filter", "-D FORWARD -j nova-network-FORWARD")
    fake.apply(skeleton(), verify=True)
    assert fake.tables["filter"]["FORWARD"] == [
        "-s 10.9.9.9/32 -j DROP",
        "-j nova-filter-top",
        "-j nova-network-FORWARD",
    ]


def test_shared_chain_is_never_flushed():
    fake = FakeIptables()
    fake.apply(skeleton())
    fake.apply(ipt.RuleSetBuilder("nova-compute").build())
    fake.apply(skeleton())
    # each binary inserts its own jump at the top if missing
    assert fake.tables["filter"]["nova-filter-top"] == [
        "-j nova-compute-local",
        "-j nova-network-local",
    ]
    assert fake.tables["filter"]["FORWARD"][0] == "-j nova-filter-top"
    assert fake.tables["filter"]["FORWARD"].count("-j nova-filter-top") == 1


def test_diff_reports_flushed_chain_readably():
    fake = FakeIptables()
    b = ipt.RuleSetBuilder(P)
    b.add("filter", "INPUT", "-i br100 -p udp -m udp --dport 67 -j ACCEPT")
    rs = b.build()
    fake.apply(rs)
    fake.command("filter", "-F nova-network-INPUT")
    assert ipt.diff_ruleset(rs, fake.read()) == [
        "--- live filter/nova-network-INPUT",
        "+++ wanted filter/nova-network-INPUT",
        "@@ -0,0 +1 @@",
        "+-A nova-network-INPUT -i br100 -p udp -m udp --dport 67 -j ACCEPT",
    ]


def test_fake_failure_is_atomic_and_names_the_line():
    fake = FakeIptables()
    fake.apply(skeleton())
    before = fake.read()
    b = ipt.RuleSetBuilder(P)
    b.add("filter", "INPUT", "-s 10.0.0.1/32 -j ACCEPT")
    b.add("filter", "INPUT", "-j NOSUCHTARGET")
    with pytest.raises(exception.FirewallApplyError, match="NOSUCHTARGET"):
        fake.apply(b.build())
    assert fake.read() == before
