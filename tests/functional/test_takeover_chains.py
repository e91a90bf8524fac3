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
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from flatnet.db import api as db_api
from flatnet.migrate import nova_import
from flatnet.plan.iptables.grammar import canonical_rule
from tests import nova_schema
from tests.functional import netns, nova_iptables
from tests.functional.dhcp_site import BIN, wait_for
from tests.functional.test_host_rules import (
    FIXED,
    FLOAT,
    NET,
    floating,
    host_rules,
    topo,
)
from tests.functional.test_takeover import CIDR, host

__all__ = ["host", "topo"]  # fixtures, imported for pytest
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


def nova_state(ns: str, cli: str, prefix: str = "10.201.0.") -> None:
    text = nova_iptables.save_text(prefix)
    netns.run(["sh", "-c", f"{cli}-restore -c <<'EOF'\n{text}EOF\n"], ns)
    for address in nova_iptables.BOUND:
        netns.run(["ip", "addr", "add", f"{address}/32", "dev", "pub0"], ns)


def _ours(anchors: set[tuple[str, str]], chain: str, rule: str) -> bool:
    return chain.startswith("nova-network-") or (chain, rule) in anchors


def check_foreign_kept(before, after, anchors) -> None:
    """Every rule that is not flatnet's is there, in its order; no
    chain holds a rule twice."""
    for name, chains in before.items():
        for chain, rules in chains.items():
            if chain.startswith("nova-network-"):
                continue
            theirs = [r for r in rules if not _ours(anchors[name], chain, r)]
            mine = [
                r for r in after[name][chain]
                if not _ours(anchors[name], chain, r)
            ]  # fmt: skip
            assert mine == theirs, (name, chain)
    for name, chains in after.items():
        for chain, rules in chains.items():
            assert len(rules) == len(set(rules)), (name, chain, rules)


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
        check_foreign_kept({name: before[name]}, {name: got}, {name: anchors})


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


# --- the flatnet-network daemon itself -------------------------------------
def _anchors_by_name() -> dict[str, set[tuple[str, str]]]:
    """flatnet's jumps in chains it does not own, by rule text."""
    found: dict[str, set[tuple[str, str]]] = {}
    for table, chains in (
        ("filter", ("INPUT", "FORWARD", "OUTPUT", "nova-filter-top")),
        ("nat", ("PREROUTING", "OUTPUT", "POSTROUTING",
                 "nova-postrouting-bottom")),
        ("mangle", ("POSTROUTING",)),
    ):  # fmt: skip
        wanted = found.setdefault(table, set())
        for chain in chains:
            for target in ("INPUT", "FORWARD", "OUTPUT", "local", "snat",
                           "PREROUTING", "POSTROUTING"):  # fmt: skip
                wanted.add((chain, f"-j nova-network-{target}"))
        wanted |= {("FORWARD", "-j nova-filter-top"),
                   ("OUTPUT", "-j nova-filter-top"),
                   ("POSTROUTING", "-j nova-postrouting-bottom")}  # fmt: skip
    return found


def _imported_site(tmp) -> pathlib.Path:
    """nova's database imported into flatnet's; flatnet's config."""
    nova_url = f"sqlite:///{tmp}/nova.sqlite"
    engine = create_engine(nova_url)
    nova_schema.populate(engine, nova_schema.NovaData(cidr=CIDR))
    engine.dispose()
    db = db_api.Database(f"sqlite:///{tmp}/flatnet.sqlite")
    db_api.sync(db)
    nova_import.import_nova(db, nova_url)
    db.dispose()
    conf = tmp / "flatnet.conf"
    (tmp / "networks").mkdir(mode=0o755)
    conf.write_text(
        f"[DEFAULT]\nhost = nethost\nstate_path = {tmp}\n"
        f"networks_path = {tmp / 'networks'}\nflat_interface = fi0\n"
        f"dhcpbridge = {BIN}/flatnet-dhcpbridge\n"
        f"dhcpbridge_flagfile = {conf}\nsync_interval = 0.05\n"
        "periodic_interval = 1\npublic_interface = pub0\n"
        "routing_source_ip = 172.31.50.1\nmetadata_host = 172.31.50.1\n"
        "iptables_backend = restore\nflatnet_roles = network\n"
        f"[database]\nconnection = sqlite:///{tmp}/flatnet.sqlite\n"
    )
    return conf


@pytest.mark.slow
def test_flatnet_network_daemon_adopts_nova_chains(host):
    """flatnet-network, started with nova's database imported on a host
    holding nova's chains, ends with ``flatnet-manage verify`` clean
    (its chains and jumps exactly as planned) and every foreign rule
    kept."""
    tmp, ns = host["tmp"], host["ns"]
    netns.veth(ns, "pub0", host["make_netns"]("up"), "eth0")
    netns.run(["ip", "addr", "add", "172.31.50.1/24", "dev", "pub0"], ns)
    nova_state(ns, "iptables", "10.234.0.")
    before = saved(ns, "iptables")
    conf = _imported_site(tmp)
    verify = [sys.executable, "-m", "flatnet.cmd.manage", "--config-file",
              str(conf), "verify"]  # fmt: skip
    assert netns.run(verify, netns=ns, check=False).returncode == 3
    with open(tmp / "daemon.log", "a") as log:
        daemon = netns.popen(
            [str(BIN / "flatnet-network"), "--config-file", str(conf)],
            netns=ns, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for(
                lambda: netns.run(verify, netns=ns, check=False).returncode
                == 0, 60, "flatnet-manage verify clean",
            )  # fmt: skip
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
    after = saved(ns, "iptables")
    check_foreign_kept(before, after, _anchors_by_name())
    assert not {c for c in after["nat"] if c.startswith("nova-network-")} - {
        "nova-network-OUTPUT", "nova-network-POSTROUTING",
        "nova-network-PREROUTING", "nova-network-float-snat",
        "nova-network-snat"}  # fmt: skip
    nat = " ".join(r for rules in after["nat"].values() for r in rules)
    assert "172.31.50.100" not in nat  # nova's associations, not flatnet's
    assert "172.24.4.1" in nat  # the imported floating IPs'
