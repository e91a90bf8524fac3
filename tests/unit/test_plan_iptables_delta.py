"""plan_delta (planning from what was applied) and the AppliedState
cache, on the FakeIptables backend; the real backends run the same
checks in tests/functional/test_iptables_backends.py."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.model import FloatingIp
from flatnet.plan import host_rules as hr
from flatnet.plan import iptables as ipt
from tests.builders import flat_network
from tests.fakes_iptables import FakeIptables

SETTINGS = hr.HostRulesSettings(
    public_interface="eth1", routing_source_ip="172.31.0.1"
)
NET = flat_network("10.0.0.0/16", uuid="u", label="n")


def floats(count: int, skip: int = -1) -> list[FloatingIp]:
    return [
        FloatingIp(
            id=i,
            address=netaddr.IPAddress(
                int(netaddr.IPAddress("172.30.0.10")) + i
            ),
            pool="nova",
            interface="eth1",
            fixed_address=netaddr.IPAddress(
                int(netaddr.IPAddress("10.0.1.0")) + i
            ),
        )
        for i in range(count)
        if i != skip
    ]


def rules(count: int, skip: int = -1) -> ipt.RuleSet:
    return hr.host_ruleset([NET], floats(count, skip), SETTINGS)


def nat(rs: ipt.RuleSet) -> ipt.Table:
    return rs.tables["nat"]


def test_delta_of_equal_tables_is_empty():
    assert ipt.plan_delta(nat(rules(50)), nat(rules(50))) == ipt.TablePlan(
        "nat"
    )


def test_delta_of_one_more_floating_ip_is_five_appends():
    plan = ipt.plan_delta(nat(rules(200)), nat(rules(201)))
    assert plan is not None
    assert plan.rewrite == plan.delete_chains == plan.create_chains == ()
    lines = plan.restore_lines()[1:-1]
    assert len(lines) == 5
    # the highest address goes last: -A (no rule lookup on nf_tables)
    assert all(line.startswith("-A ") for line in lines)
    assert all("10.0.1.200" in line for line in lines)


def test_delta_of_a_floating_ip_in_the_middle_inserts_at_its_place():
    plan = ipt.plan_delta(nat(rules(200, skip=7)), nat(rules(200)))
    assert plan is not None
    lines = plan.restore_lines()[1:-1]
    assert (
        "-I nova-network-OUTPUT 8 -d 172.30.0.17 -j DNAT --to " + ("10.0.1.7")
        in lines
    )
    assert len(lines) == 5


def test_delta_of_a_removed_floating_ip_deletes_by_spec():
    plan = ipt.plan_delta(nat(rules(200)), nat(rules(200, skip=7)))
    assert plan is not None
    lines = plan.restore_lines()[1:-1]
    assert len(lines) == 5
    assert all(line.startswith("-D nova-network-") for line in lines)
    # canonical spelling: -D matches what the kernel holds
    assert (
        "-D nova-network-PREROUTING -d 172.30.0.17/32 -j DNAT "
        + ("--to-destination 10.0.1.7")
        in lines
    )


def test_delta_needs_a_read_when_anchors_or_shared_chains_change():
    other = ipt.RuleSetBuilder("nova-compute").build().tables["nat"]
    assert ipt.plan_delta(nat(rules(1)), other) is None
    bare = ipt.Table("nat", nat(rules(1)).chains)
    assert ipt.plan_delta(bare, nat(rules(1))) is None


def test_delta_creates_and_deletes_owned_chains():
    known = nat(rules(1))
    extra = ipt.Chain("nova-network-extra", ("-j ACCEPT",))
    more = ipt.Table("nat", (*known.chains, extra), known.shared_chains,
                     known.anchors)  # fmt: skip
    plan = ipt.plan_delta(known, more)
    assert plan is not None
    assert plan.restore_lines()[1:-1] == [
        ":nova-network-extra - [0:0]",
        "-A nova-network-extra -j ACCEPT",
    ]
    back = ipt.plan_delta(more, known)
    assert back is not None
    assert back.delete_chains == ("nova-network-extra",)


def test_delta_result_equals_full_plan_result():
    fake = FakeIptables()
    fake.apply(rules(300))
    fake.apply(rules(301))
    fake.apply(rules(301, skip=100))
    fake.apply(rules(120))  # a big change: rewrites, still no read
    assert fake.reads == 3  # the first apply only, one per table
    assert ipt.diff_ruleset(rules(120), fake.read()) == []


def test_noop_apply_reads_and_commits_nothing():
    fake = FakeIptables()
    fake.apply(rules(100))
    reads, commits = fake.reads, fake.commits
    assert fake.apply(rules(100)) == []
    assert (fake.reads, fake.commits) == (reads, commits)


def test_plus_one_sends_one_nat_payload_of_five_lines():
    fake = FakeIptables()
    fake.apply(rules(100))
    fake.sent.clear()
    fake.apply(rules(101))
    assert [(p[0], len(p) - 2) for p in fake.sent] == [("*nat", 5)]


def test_drift_stays_until_verify_then_is_repaired():
    fake = FakeIptables()
    fake.apply(rules(10))
    fake.command("nat", "-F nova-network-PREROUTING")
    assert fake.apply(rules(10)) == []
    assert ipt.diff_ruleset(rules(10), fake.read()) != []
    assert [p.table for p in fake.apply(rules(10), verify=True)] == ["nat"]
    assert ipt.diff_ruleset(rules(10), fake.read()) == []


def test_bad_rule_fails_once_more_after_a_fresh_read_then_raises():
    fake = FakeIptables()
    fake.apply(rules(3))
    before = fake.read()
    bad = ipt.RuleSetBuilder("nova-network")
    bad.add("nat", "OUTPUT", "-d 172.30.0.9/32 -j NOSUCHCHAIN")
    reads = fake.reads
    with pytest.raises(exception.FirewallApplyError, match="NOSUCHCHAIN"):
        fake.apply(bad.build())
    assert fake.reads == reads + 1  # the delta failed: one re-read of nat
    assert fake.read()["nat"] == before["nat"]


def test_changes_in_the_middle_and_at_the_end_stay_edits():
    plan = ipt.plan_delta(nat(rules(400, skip=50)), nat(rules(410)))
    assert plan is not None
    assert plan.rewrite == ()
    ops = [op.op for op in plan.edits]
    assert (ops.count("-I"), ops.count("-A"), len(ops)) == (5, 50, 55)
    fake = FakeIptables()
    fake.apply(rules(400, skip=50))
    fake.apply(rules(410))
    assert fake.reads == 3
    assert ipt.diff_ruleset(rules(410), fake.read()) == []
