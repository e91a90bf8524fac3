"""flatnet-network's host rules starting over nova-network's chains.

The host namespace gets nova's exact ``iptables-save`` text for an
all-in-one nova-network + nova-compute host
(tests/functional/nova_iptables.py, built from nova linux_net
``IptablesManager`` and nova/virt/firewall.py) and nova's bound floating
addresses. While two UDP probe loops run through it (the instance out
via its floating IP's SNAT, the outside in via the DNAT and
nova-compute's instance chain; a new socket, so a new conntrack entry
and a fresh NAT decision, per probe), flatnet's ``HostRules`` syncs the
same network and floating IP from its database. Then:

* no probe is lost and every answer shows the same translation as
  before (no allowed packet dropped during the swap);
* every ``nova-network-*`` chain holds exactly what flatnet's plan
  wants (what it writes on a clean host), the stale floating IP nova
  left behind is gone (rules and address), and no other
  ``nova-network-*`` chain is left;
* each of flatnet's jumps (``-j nova-filter-top``, ``-j
  nova-network-*``, ``-j nova-postrouting-bottom``) is there once;
* every other rule (nova-compute's chains and jumps, including those in
  the shared chains, and an operator's chain) is there, in its order.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator

import pytest

from flatnet.plan.iptables.grammar import canonical_rule
from tests.functional import netns, nova_iptables
from tests.functional.test_host_rules import (
    FIXED,
    FLOAT,
    NET,
    floating,
    host_rules,
    topo,
)

__all__ = ["topo"]  # the fixture, imported for pytest
pytestmark = pytest.mark.root

ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(100)
    s.sendto(peer[0].encode() + b" " + data, peer)
"""
PROBE = r"""
import json, os, socket, sys, time
target, port, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sent, lost, peers, worst = 0, 0, {}, 0.0
print("ready", flush=True)
while not os.path.exists(stop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    begin = time.monotonic()
    s.sendto(str(sent).encode(), (target, port))
    sent += 1
    try:
        peer = s.recv(100).decode().split()[0]
        peers[peer] = peers.get(peer, 0) + 1
        worst = max(worst, time.monotonic() - begin)
    except OSError:
        lost += 1
    s.close()
    time.sleep(0.01)
print(json.dumps({"sent": sent, "lost": lost, "peers": peers,
                  "worst": worst}), flush=True)
"""
OUT = "172.31.50.2"


@contextlib.contextmanager
def background(ns: str, script: str, *args: str) -> Iterator[list[str]]:
    """Run ``script`` in ``ns``; yields the list its last line goes to."""
    proc = netns.popen(
        [sys.executable, "-c", script, *args], netns=ns, stdout=-1
    )
    found: list[str] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield found
        if script is PROBE:
            found.append(proc.communicate(timeout=30)[0].strip())
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def saved(ns: str, cli: str) -> dict[str, dict[str, list[str]]]:
    """table -> chain -> rules, from ``<cli>-save``."""
    tables: dict[str, dict[str, list[str]]] = {}
    chains: dict[str, list[str]] = {}
    for line in netns.run([f"{cli}-save"], netns=ns).stdout.splitlines():
        if line.startswith("*"):
            chains = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            chains.setdefault(chain, []).append(rule)
    return tables


def nova_state(ns: str, cli: str) -> None:
    text = nova_iptables.save_text()
    netns.run(["sh", "-c", f"{cli}-restore -c <<'EOF'\n{text}EOF\n"], ns)
    for address in nova_iptables.BOUND:
        netns.run(["ip", "addr", "add", f"{address}/32", "dev", "pub0"], ns)


def _ours(anchors: set[tuple[str, str]], chain: str, rule: str) -> bool:
    return chain.startswith("nova-network-") or (chain, rule) in anchors


def check_end_state(before, after, ruleset) -> None:
    for name, table in ruleset.tables.items():
        got = after[name]
        for chain in table.chains:
            assert got[chain.name] == list(chain.canonical()), chain.name
        wanted = {c.name for c in table.chains}
        left = {c for c in got if c.startswith("nova-network-")}
        assert left == wanted, name
        anchors = {(a.chain, canonical_rule(a.rule)) for a in table.anchors}
        for chain, rule in anchors:
            assert got[chain].count(rule) == 1, (name, chain, rule)
        for chain, rules in got.items():
            assert len(rules) == len(set(rules)), (name, chain, rules)
        for chain, rules in before[name].items():
            if chain.startswith("nova-network-"):
                continue
            theirs = [r for r in rules if not _ours(anchors, chain, r)]
            mine = [r for r in got[chain] if not _ours(anchors, chain, r)]
            assert mine == theirs, (name, chain)


@pytest.mark.parametrize("kind", ["restore", "iptc"])
def test_flatnet_adopts_nova_chains_without_dropping_a_packet(
    topo, kind, tmp_path
):
    cli = "iptables-legacy" if kind == "iptc" else "iptables"
    nova_state(topo["host"], cli)
    before = saved(topo["host"], cli)
    assert "-j nova-compute-local" in before["filter"]["nova-filter-top"]
    rules = host_rules(
        topo, kind, send_arp_for_ha=True, send_arp_for_ha_count=1,
        floating_ranges=("172.31.50.96/28",),
    )  # fmt: skip
    stop = str(tmp_path / "stop")
    with (
        background(topo["out"], ECHO, OUT, "9000"),
        background(topo["inst"], ECHO, "0.0.0.0", "9001"),  # noqa: S104
        background(topo["inst"], PROBE, OUT, "9000", stop) as outbound,
        background(topo["out"], PROBE, FLOAT, "9001", stop) as inbound,
    ):
        time.sleep(0.5)  # probes through nova's rules first
        started = time.monotonic()
        result = rules.sync([NET], [floating(FIXED)])
        took = time.monotonic() - started
        time.sleep(0.5)
        open(stop, "w").close()  # noqa: SIM115
    figures = {"out": json.loads(outbound[0]), "in": json.loads(inbound[0])}
    print(f"takeover sync {took:.3f} s, probes {figures}, "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    assert figures["out"]["lost"] == figures["in"]["lost"] == 0, figures
    assert figures["out"]["peers"].keys() == {FLOAT}  # float-snat throughout
    assert figures["in"]["peers"].keys() == {OUT}  # DNAT throughout
    assert min(f["sent"] for f in figures.values()) >= 20
    assert result.unbound == ("172.31.50.101 pub0",)
    after = saved(topo["host"], cli)
    check_end_state(before, after, rules.desired([NET], [floating(FIXED)]))
    assert not any("172.31.50.101" in r for c in after["nat"].values()
                   for r in c)  # fmt: skip
    assert after["filter"]["operator-ssh"] == ["-s 127.0.0.0/8 -j ACCEPT"]
    assert "-p tcp -m tcp --dport 2222 -j operator-ssh" in (
        after["filter"]["INPUT"])  # fmt: skip
    assert rules.sync([NET], [floating(FIXED)]).changed is False
