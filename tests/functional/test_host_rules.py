"""Real packets through the network host's rules.

Three namespaces: ``inst`` (an instance, 10.201.0.3 behind br100) --
``host`` (br100 10.201.0.1/24, pub0 172.31.50.1/24, ip_forward=1 only
here) -- ``out`` (172.31.50.2/24, no route back to 10.201.0.0/24, so only
SNATed traffic can be answered). Listeners reply with the peer address
they saw, so every assertion is about what the packet looked like.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
from collections.abc import Iterator

import netaddr
import pytest

from flatnet.linux import iptables_iptc, netlink
from flatnet.linux.address import HostAddresses
from flatnet.linux.arping import Arping
from flatnet.linux.conntrack import Conntrack
from flatnet.linux.iptables_iptc import IptcBackend
from flatnet.linux.iptables_restore import RestoreBackend
from flatnet.model import FloatingIp
from flatnet.plan.host_rules import HostRulesSettings
from flatnet.service.host_rules import HostRules
from tests.builders import flat_network
from tests.functional import netns

pytestmark = pytest.mark.root

LISTENER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(peer[0].encode() + b"\n")
    c.close()
"""
CLIENT = (
    "import socket, sys\n"
    "c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)\n"
    "print(c.recv(100).decode().strip())\n"
)
NET = flat_network("10.201.0.0/24")
FIXED = "10.201.0.3"
FLOAT = "172.31.50.100"


def floating(fixed: str | None) -> FloatingIp:
    return FloatingIp(
        id=1,
        address=netaddr.IPAddress(FLOAT),
        pool="nova",
        interface="pub0",
        fixed_address=None if fixed is None else netaddr.IPAddress(fixed),
    )


@pytest.fixture
def topo(make_netns) -> dict[str, str]:
    inst, host, out = make_netns("i"), make_netns("h"), make_netns("o")
    run = netns.run
    netns.veth(inst, "eth0", host, "vh0")
    run(["ip", "link", "add", "br100", "type", "bridge"], netns=host)
    run(["ip", "link", "set", "vh0", "master", "br100"], netns=host)
    run(["ip", "addr", "add", "10.201.0.1/24", "dev", "br100"], netns=host)
    run(["ip", "link", "set", "br100", "up"], netns=host)
    run(["ip", "addr", "add", f"{FIXED}/24", "dev", "eth0"], netns=inst)
    run(["ip", "route", "add", "default", "via", "10.201.0.1"], netns=inst)
    netns.veth(host, "pub0", out, "eth0")
    run(["ip", "addr", "add", "172.31.50.1/24", "dev", "pub0"], netns=host)
    run(["ip", "addr", "add", "172.31.50.2/24", "dev", "eth0"], netns=out)
    run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=host)
    return {"inst": inst, "host": host, "out": out}


@contextlib.contextmanager
def listener(ns: str, address: str, port: int) -> Iterator[None]:
    proc = netns.popen(
        [sys.executable, "-c", LISTENER, address, str(port)],
        netns=ns,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def peer_seen(ns: str, address: str, port: int) -> str | None:
    """Connect from ``ns``; the address the listener saw, or None."""
    out = netns.run(
        [sys.executable, "-c", CLIENT, address, str(port)],
        netns=ns,
        check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def host_rules(topo, backend_kind: str, **settings) -> HostRules:
    backend = (
        IptcBackend(netns=topo["host"])
        if backend_kind == "iptc"
        else RestoreBackend("iptables", netns=topo["host"])
    )
    base = {
        "public_interface": "pub0",
        "routing_source_ip": "172.31.50.1",
        "metadata_host": "172.31.50.1",
        "metadata_port": 8775,
    }
    return HostRules(
        HostRulesSettings(**{**base, **settings}),
        backend,
        HostAddresses(netns=topo["host"]),
        Arping(netns=topo["host"]),
        Conntrack(netns=topo["host"]),
    )


BACKENDS = ["restore", "iptc"]


@pytest.mark.parametrize("kind", BACKENDS)
def test_metadata_dnat_reaches_metadata_host(topo, kind):
    rules = host_rules(topo, kind)
    with listener(topo["host"], "172.31.50.1", 8775):
        assert peer_seen(topo["inst"], "169.254.169.254", 80) is None
        rules.sync([NET], [])
        assert peer_seen(topo["inst"], "169.254.169.254", 80) == FIXED


@pytest.mark.parametrize("kind", BACKENDS)
def test_metadata_redirect_when_metadata_host_is_localhost(topo, kind):
    rules = host_rules(
        topo, kind, metadata_host="127.0.0.1", metadata_port=8776
    )
    with listener(topo["host"], "0.0.0.0", 8776):  # noqa: S104
        assert peer_seen(topo["inst"], "169.254.169.254", 80) is None
        rules.sync([NET], [])
        assert peer_seen(topo["inst"], "169.254.169.254", 80) == FIXED


@pytest.mark.parametrize("kind", BACKENDS)
def test_snat_to_routing_source_ip_and_repair_after_flush(topo, kind):
    rules = host_rules(topo, kind)
    with listener(topo["out"], "172.31.50.2", 9000):
        assert peer_seen(topo["inst"], "172.31.50.2", 9000) is None
        assert rules.sync([NET], []).tables == ("filter", "nat", "mangle")
        assert peer_seen(topo["inst"], "172.31.50.2", 9000) == "172.31.50.1"
        assert rules.sync([NET], []).changed is False
        cli = "iptables-legacy" if kind == "iptc" else "iptables"
        netns.run(
            [cli, "-t", "nat", "-F", "nova-network-snat"], netns=topo["host"]
        )
        netns.run([cli, "-F", "nova-network-INPUT"], netns=topo["host"])
        assert peer_seen(topo["inst"], "172.31.50.2", 9000) is None
        report = rules.verify([NET], [])
        assert any("nova-network-snat" in line for line in report)
        assert any("nova-network-INPUT" in line for line in report)
        # an event-driven sync trusts what it applied (no read) ...
        assert rules.sync([NET], []).tables == ()
        # ... the periodic verifying sync re-reads and repairs
        verified = rules.sync([NET], [], verify=True)
        assert verified.tables == ("filter", "nat")
        assert rules.verify([NET], []) == []
        assert peer_seen(topo["inst"], "172.31.50.2", 9000) == "172.31.50.1"


def bound(topo) -> str:
    return netns.run(
        ["ip", "-4", "-o", "addr", "show", "dev", "pub0"], netns=topo["host"]
    ).stdout


@pytest.mark.parametrize("kind", BACKENDS)
def test_floating_ip_both_directions_then_removed(topo, kind):
    rules = host_rules(
        topo,
        kind,
        send_arp_for_ha=True,
        send_arp_for_ha_count=1,
        floating_ranges=("172.31.50.192/26",),
    )
    netns.run(
        ["ip", "addr", "add", "172.31.50.150/32", "dev", "pub0"],
        netns=topo["host"],
    )  # not ours: never touched
    netns.run(
        ["ip", "addr", "add", "172.31.50.200/32", "dev", "pub0"],
        netns=topo["host"],
    )  # in a floating range, unwanted: removed
    with (
        listener(topo["inst"], "0.0.0.0", 9001),
        listener(topo["out"], "172.31.50.2", 9000),
    ):  # noqa: S104
        assert peer_seen(topo["out"], FLOAT, 9001) is None
        result = rules.sync([NET], [floating(FIXED)])
        assert result.bound == (f"{FLOAT} pub0",)
        assert result.unbound == ("172.31.50.200 pub0",)
        assert f"{FLOAT}/32" in bound(topo)
        assert peer_seen(topo["out"], FLOAT, 9001) == "172.31.50.2"
        assert peer_seen(topo["inst"], "172.31.50.2", 9000) == FLOAT
        assert rules.verify([NET], [floating(FIXED)]) == []

        result = rules.sync([NET], [floating(None)])
        assert result.unbound == (f"{FLOAT} pub0",)
        assert result.forgotten == (FIXED,)
        assert f"{FLOAT}/32" not in bound(topo)
        assert "172.31.50.150/32" in bound(topo)
        assert "172.31.50.200/32" not in bound(topo)
        assert peer_seen(topo["out"], FLOAT, 9001) is None
        assert peer_seen(topo["inst"], "172.31.50.2", 9000) == "172.31.50.1"
        assert rules.verify([NET], [floating(None)]) == []


@dataclasses.dataclass
class Calls:
    """Every subprocess, netlink socket and libiptc handle a sync used."""

    argv: list[list[str]] = dataclasses.field(default_factory=list)
    netlink: int = 0
    libiptc: int = 0

    @property
    def total(self) -> int:
        return len(self.argv) + self.netlink + self.libiptc


def watch(monkeypatch) -> Calls:
    """Spies (the real calls still run) on the three ways out."""
    calls = Calls()
    real_run = subprocess.run
    real_open = iptables_iptc._open
    real_iproute = netlink.open_iproute

    def run(argv, *args, **kwargs):
        calls.argv.append(list(argv))
        return real_run(argv, *args, **kwargs)

    def open_(name):
        calls.libiptc += 1
        return real_open(name)

    def iproute(*args, **kwargs):
        calls.netlink += 1
        return real_iproute(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(iptables_iptc, "_open", open_)
    monkeypatch.setattr(netlink, "open_iproute", iproute)
    return calls


@pytest.mark.parametrize("kind", BACKENDS)
def test_unchanged_sync_is_free_and_one_more_float_is_one_commit(
    topo, kind, monkeypatch
):
    rules = host_rules(topo, kind)
    rules.sync([NET], [])
    calls = watch(monkeypatch)
    assert rules.sync([NET], []).changed is False
    assert calls.total == 0  # no subprocess, no netlink, no libiptc

    result = rules.sync([NET], [floating(FIXED)])
    assert result.tables == ("nat",)
    assert result.bound == (f"{FLOAT} pub0",)
    restores = [a for a in calls.argv if a[-3].endswith("-restore")]
    saves = [a for a in calls.argv if any(x.endswith("-save") for x in a)]
    assert saves == []
    if kind == "restore":
        assert len(restores) == 1
    else:
        assert calls.libiptc == 1  # one handle, one commit
    assert rules.verify([NET], [floating(FIXED)]) == []


@pytest.mark.parametrize("kind", BACKENDS)
def test_periodic_verify_restores_the_metadata_ip_and_binds(topo, kind):
    rules = host_rules(topo, kind)
    rules.sync([NET], [floating(FIXED)])
    host = topo["host"]
    netns.run(["ip", "addr", "del", "169.254.169.254/32", "dev", "lo"],
              netns=host)  # fmt: skip
    netns.run(["ip", "addr", "del", f"{FLOAT}/32", "dev", "pub0"], netns=host)
    assert rules.verify([NET], [floating(FIXED)]) == [
        f"+addr {FLOAT}/32 dev pub0",
        "+addr 169.254.169.254/32 dev lo",
    ]
    assert rules.sync([NET], [floating(FIXED)]).bound == ()  # trusted
    assert rules.sync([NET], [floating(FIXED)], verify=True).bound == (
        f"{FLOAT} pub0",
    )
    assert rules.verify([NET], [floating(FIXED)]) == []
