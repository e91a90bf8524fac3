"""A compute host in namespaces for the firewall's real-packet tests.

``host``: a bridge with the gateway/DHCP address, forwarding on and
``br_netfilter`` calling iptables for bridged frames (in this namespace
only); one namespace per instance on the bridge; ``outside`` routed to
the host through an uplink. :class:`Applier` is the test-only applier:
planner, ipset executor, iptables RestoreBackend and conntrack in the
order the reconciler will use (sets before rules, prune after, then cut
flows whose permission went away).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import netaddr

from flatnet.linux.conntrack import Conntrack
from flatnet.linux.ipset import IpsetBackend
from flatnet.linux.iptables_restore import RestoreBackend
from flatnet.plan import firewall as fw
from flatnet.plan.firewall_flows import FlowCut, flows_to_cut
from flatnet.plan.firewall_model import HostFirewall
from flatnet.service.firewall import cut_filters
from tests.functional import netns

NET = "10.77.0"
GATEWAY = f"{NET}.1"
OUTSIDE = "192.168.77.2"

SERVER = r"""
import socket, sys, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
def echo(c):
    while True:
        data = c.recv(100)
        if not data: return
        c.sendall(data)
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("up", flush=True)
threading.Event().wait()
"""
CONNECT = r"""
import socket, sys
try:
    dst = (sys.argv[1], int(sys.argv[2]))
    socket.create_connection(dst, timeout=1).close()
except OSError:
    sys.exit(1)
"""
HOLD = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
c.settimeout(1.0)
print("connected", flush=True)
for line in sys.stdin:
    c.sendall(line.strip().encode())
    try:
        print("ok" if c.recv(100) else "closed", flush=True)
    except OSError:
        print("timeout", flush=True)
"""


class Applier:
    """Applies HostFirewall states in a namespace, as the compute
    service will: ipsets, then iptables, then prune, then cut flows."""

    def __init__(self, ns: str, settings: fw.FirewallSettings) -> None:
        self.settings = settings
        self.ipsets = IpsetBackend(settings.prefix, netns=ns)
        self.iptables = RestoreBackend("iptables", netns=ns)
        self.conntrack = Conntrack(netns=ns)
        self.last: HostFirewall | None = None
        self.cut_flows = True

    def apply(self, state: HostFirewall) -> tuple[fw.FirewallPlan, list]:
        plan = fw.firewall_plan(state, self.settings)
        self.ipsets.ensure(plan.ipsets)
        tables = self.iptables.apply(plan.ruleset)
        self.ipsets.prune(plan.ipsets)
        cuts: tuple[FlowCut, ...] = ()
        if self.last is not None and self.cut_flows:
            same_net = self.settings.allow_same_net_traffic
            cuts = flows_to_cut(self.last, state, same_net)
            self.conntrack.delete_many(cut_filters(cuts))
        self.last = state
        return plan, tables


class Site:
    """The namespaces of one compute host and its instances."""

    def __init__(self, make_netns: Callable[[str], str]) -> None:
        self.make_netns = make_netns
        self.host = make_netns("fwh")
        self.outside = make_netns("fwo")
        self.bridge = netns.unique_name("br")
        self.vms: dict[int, str] = {}
        self.procs: list[subprocess.Popen[str]] = []
        h = self.host
        netns.run(
            ["ip", "link", "add", self.bridge, "type", "bridge"], netns=h
        )
        netns.run(
            ["ip", "addr", "add", f"{GATEWAY}/24", "dev", self.bridge], netns=h
        )
        netns.run(["ip", "link", "set", self.bridge, "up"], netns=h)
        netns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=h)
        netns.run(
            ["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"], netns=h
        )
        netns.veth(h, "up0", self.outside, "eth0")
        netns.run(
            ["ip", "addr", "add", "192.168.77.1/24", "dev", "up0"], netns=h
        )
        netns.run(
            ["ip", "addr", "add", f"{OUTSIDE}/24", "dev", "eth0"],
            netns=self.outside,
        )
        netns.run(
            ["ip", "route", "add", f"{NET}.0/24", "via", "192.168.77.1"],
            netns=self.outside,
        )

    def add_vm(self, n: int) -> str:
        """Instance namespace ``n`` at 10.77.0.<n> on the bridge."""
        ns = self.make_netns(f"vm{n}")
        port = f"tap{n}"
        netns.veth(self.host, port, ns, "eth0")
        netns.run(
            ["ip", "link", "set", port, "master", self.bridge], netns=self.host
        )
        netns.run(
            ["ip", "addr", "add", f"{NET}.{n}/24", "dev", "eth0"], netns=ns
        )
        netns.run(["ip", "route", "add", "default", "via", GATEWAY], netns=ns)
        self.vms[n] = ns
        return ns

    def address(self, n: int) -> str:
        return f"{NET}.{n}"

    def serve(self, n: int, *ports: int) -> None:
        proc = netns.popen(
            [sys.executable, "-c", SERVER, *map(str, ports)],
            netns=self.vms[n], stdout=subprocess.PIPE,
        )  # fmt: skip
        self.procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "up"

    def can_connect(self, src_ns: str, n: int, port: int) -> bool:
        argv = [sys.executable, "-c", CONNECT, self.address(n), str(port)]
        return netns.run(argv, netns=src_ns, check=False).returncode == 0

    def hold(self, src_ns: str, n: int, port: int) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", HOLD, self.address(n), str(port)]
        proc = netns.popen(
            argv, netns=src_ns, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "connected"
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.communicate()


def send(proc: subprocess.Popen[str], text: str) -> str:
    """One line through a held connection: ok, timeout or closed."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(text + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def ip(text: str) -> netaddr.IPAddress:
    return netaddr.IPAddress(text)
