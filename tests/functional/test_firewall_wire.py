"""The compute firewall on the wire: real TCP/UDP through a bridge with
br_netfilter in the test's namespace, rules from plan/firewall applied
by the iptables RestoreBackend and the ipset executor (fw_site.Applier).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from flatnet.plan import firewall as fw
from flatnet.plan import iptables as ipt
from tests.firewall_data import group, host, instance, rule
from tests.functional import netns
from tests.functional.fw_site import GATEWAY, Applier, Site, send

pytestmark = pytest.mark.root
CLOSED = fw.FirewallSettings(allow_same_net_traffic=False)
CIDR = "10.77.0.0/24"


@pytest.fixture
def site(make_netns):
    made = Site(make_netns)
    yield made
    made.close()


def vm(n, *groups):
    return instance(n, f"10.77.0.{n}", groups=groups, cidr=CIDR, dhcp=GATEWAY)


def test_allowed_port_passes_blocked_port_is_dropped(site):
    for n in (10, 11):
        site.add_vm(n)
    site.serve(10, 80, 81)
    web = group(1, rule("tcp", "80", "0.0.0.0/0"))
    applier = Applier(site.host, CLOSED)
    plan, _ = applier.apply(host([vm(10, 1), vm(11)], [web]))
    # from outside (routed) and from another instance (bridged)
    assert site.can_connect(site.outside, 10, 80)
    assert not site.can_connect(site.outside, 10, 81)
    assert site.can_connect(site.vms[11], 10, 80)
    assert not site.can_connect(site.vms[11], 10, 81)
    live = applier.iptables.read()
    assert ipt.diff_ruleset(plan.ruleset, live) == []


def test_same_net_traffic_is_nova_default(site):
    for n in (10, 11):
        site.add_vm(n)
    site.serve(10, 81)
    applier = Applier(site.host, fw.FirewallSettings())
    applier.apply(host([vm(10), vm(11)], []))
    assert site.can_connect(site.vms[11], 10, 81)  # -s 10.77.0.0/24
    assert not site.can_connect(site.outside, 10, 81)


def test_source_group_admits_members_and_a_later_member(site):
    for n in (10, 11, 12):
        site.add_vm(n)
    site.serve(10, 5432)
    db = group(1, rule("tcp", "5432", source=2))
    app = group(2)
    applier = Applier(site.host, CLOSED)
    plan, _ = applier.apply(host([vm(10, 1), vm(11, 2), vm(12)], [db, app]))
    assert plan.ipsets[0].members == {"10.77.0.11"}
    assert site.can_connect(site.vms[11], 10, 5432)
    assert not site.can_connect(site.vms[12], 10, 5432)
    assert not site.can_connect(site.outside, 10, 5432)
    # vm 12 joins 'app': one set update, no iptables change
    plan, tables = applier.apply(
        host([vm(10, 1), vm(11, 2), vm(12, 2)], [db, app])
    )
    assert tables == []
    assert plan.ipsets[0].members == {"10.77.0.11", "10.77.0.12"}
    assert site.can_connect(site.vms[12], 10, 5432)
    # a rule added to the live group reaches the running instance
    site.serve(10, 6000)
    assert not site.can_connect(site.vms[11], 10, 6000)
    db2 = group(
        1, rule("tcp", "5432", source=2), rule("tcp", "6000", source=2)
    )
    applier.apply(host([vm(10, 1), vm(11, 2), vm(12, 2)], [db2, app]))
    assert site.can_connect(site.vms[11], 10, 6000)


def test_unfilter_removes_every_chain_rule_and_set(site):
    db = group(1, rule("tcp", "5432", source=2))
    app = group(2, rule("udp", "53", source=3))
    dns = group(3)
    applier = Applier(site.host, CLOSED)
    applier.apply(host([vm(10, 1), vm(11, 2), vm(12, 3)], [db, app, dns]))
    assert set(applier.ipsets.read()) == {
        "nova-compute-sg-2",
        "nova-compute-sg-3",
    }
    applier.apply(host([vm(11, 2), vm(12, 3)], [db, app, dns]))  # unfilter 10
    filt = applier.iptables.read()["filter"]
    assert "nova-compute-inst-10" not in filt.chains
    assert not [
        r for r in filt.chains["nova-compute-local"] if "10.77.0.10" in r
    ]
    assert set(applier.ipsets.read()) == {"nova-compute-sg-3"}
    applier.apply(host([], [db, app, dns]))
    filt = applier.iptables.read()["filter"]
    assert not [c for c in filt.chains if "-inst-" in c]
    assert filt.chains["nova-compute-local"] == ()
    assert filt.chains["nova-compute-INPUT"] == ()  # no DHCP request rule
    assert applier.ipsets.read() == {}
    save = netns.run(["iptables-save"], netns=site.host).stdout
    assert "10.77.0." not in save
    assert "match-set" not in save


@pytest.mark.parametrize("source", ["cidr", "group"])
@pytest.mark.parametrize("cut", [True, False], ids=["cut", "no-cut"])
def test_removing_a_rule_cuts_an_established_flow(site, source, cut):
    for n in (10, 11):
        site.add_vm(n)
    site.serve(10, 7000)
    grant = (
        rule("tcp", "7000", source=2)
        if source == "group"
        else rule("tcp", "7000", "10.77.0.11/32")
    )
    applier = Applier(site.host, CLOSED)
    applier.cut_flows = cut
    applier.apply(host([vm(10, 1), vm(11, 2)], [group(1, grant), group(2)]))
    held = site.hold(site.vms[11], 10, 7000)
    assert send(held, "before") == "ok"
    applier.apply(host([vm(10, 1), vm(11, 2)], [group(1), group(2)]))
    # without the cut, RELATED,ESTABLISHED keeps the old flow alive
    # (Neutron LP#1335375); with it, the next packet is dropped (the
    # client waits 1 s for its echo)
    assert send(held, "after") == ("timeout" if cut else "ok")
    assert not site.can_connect(site.vms[11], 10, 7000)


def test_a_member_leaving_cuts_its_flows_only(site):
    for n in (10, 11, 12):
        site.add_vm(n)
    site.serve(10, 7000)
    db, app = group(1, rule("tcp", "7000", source=2)), group(2)
    applier = Applier(site.host, CLOSED)
    applier.apply(host([vm(10, 1), vm(11, 2), vm(12, 2)], [db, app]))
    leaving = site.hold(site.vms[11], 10, 7000)
    staying = site.hold(site.vms[12], 10, 7000)
    _, tables = applier.apply(host([vm(10, 1), vm(11), vm(12, 2)], [db, app]))
    assert tables == []  # a set update only
    assert send(leaving, "x") == "timeout"
    assert send(staying, "x") == "ok"


RECEIVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.settimeout(20)
print("up", flush=True)
seen = set()
while True:
    data = s.recv(64)
    if data == b"end": break
    seen.add(int(data))
print(len(seen), max(seen) + 1 if seen else 0, flush=True)
"""
SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = (sys.argv[1], int(sys.argv[2]))
stop = open(sys.argv[3])
n = 0
start = time.monotonic()
while True:
    s.sendto(str(n).encode(), dst); n += 1
    time.sleep(max(0.0, start + n * 0.002 - time.monotonic()))
    if n % 50 == 0 and stop.read(1): break
time.sleep(0.2)
for _ in range(5):
    s.sendto(b"end", dst); time.sleep(0.05)
print(n, flush=True)
"""


@pytest.mark.slow
def test_no_blink_during_100_unrelated_updates(site, tmp_path):
    """UDP at 500 packets/s to an allowed port (no replies: every packet
    is judged by the rules, never by ESTABLISHED) while 100 instances
    are added one by one and join the group the rule uses."""
    for n in (10, 11):
        site.add_vm(n)
    web = group(
        1, rule("udp", "9000", "0.0.0.0/0"), rule("tcp", "22", source=2)
    )
    ops = group(2)
    state = [vm(10, 1, 2), vm(11, 2)]
    applier = Applier(site.host, CLOSED)
    applier.apply(host(state, [web, ops]))
    receiver = netns.popen(
        [sys.executable, "-c", RECEIVER, "9000"],
        netns=site.vms[10],
        stdout=subprocess.PIPE,
    )
    site.procs.append(receiver)
    assert receiver.stdout is not None
    assert receiver.stdout.readline().strip() == "up"
    stop = tmp_path / "stop"
    stop.write_text("")
    sender = netns.popen(
        [sys.executable, "-c", SENDER, "10.77.0.10", "9000", str(stop)],
        netns=site.outside, stdout=subprocess.PIPE,
    )  # fmt: skip
    site.procs.append(sender)
    for n in range(100):
        other = instance(
            1000 + n,
            f"10.77.{1 + n // 200}.{n % 200 + 2}",
            groups=(1, 2),
            cidr=CIDR,
            dhcp=GATEWAY,
        )
        state.append(other)
        applier.apply(host(state, [web, ops]))
    stop.write_text("x")
    sent = int(sender.communicate(timeout=30)[0])
    received, highest = map(int, receiver.communicate(timeout=30)[0].split())
    assert sent > 200
    assert (received, highest) == (sent, sent), f"lost {sent - received}"


def test_a_crash_between_sets_and_rules_converges_after_restart(site):
    """kill -9 after the sets of a new state were ensured but before its
    rules (and the prune) ran: a fresh service (no cache) reaches the
    next state exactly, without stale sets or chains."""
    for n in (10, 11):
        site.add_vm(n)
    site.serve(10, 5432)
    db = group(1, rule("tcp", "5432", source=2))
    app, more = group(2), group(3, rule("udp", "53", source=4))
    first = Applier(site.host, CLOSED)
    first.apply(host([vm(10, 1), vm(11, 2)], [db, app]))
    crashed = host([vm(10, 1, 3), vm(11, 2)], [db, app, more, group(4)])
    first.ipsets.ensure(fw.firewall_plan(crashed, CLOSED).ipsets)
    # killed here: sets of `crashed` exist, its rules were never applied
    restarted = Applier(site.host, CLOSED)
    final = host([vm(10, 1), vm(11)], [db, app])
    plan, _ = restarted.apply(final)
    assert ipt.diff_ruleset(plan.ruleset, restarted.iptables.read()) == []
    assert restarted.ipsets.differences(plan.ipsets) == []
    assert set(restarted.ipsets.read()) == {"nova-compute-sg-2"}
    assert not site.can_connect(site.vms[11], 10, 5432)  # 11 left 'app'
