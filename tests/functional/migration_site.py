"""Two hosts sharing one database, for live-migration tests.

Layout (every namespace made by the test, removed after):

* ``switch``: bridge ``sw0``, the flat network's wire, with the peer's
  address (``PEER``) on it: a machine of the same L2 segment that
  streams to and from the guest.
* host ``ha`` (namespace ``a``): the real flatnet-network with the
  network AND compute roles; it makes ``br100`` with uplink ``fi0``
  (veth to ``sw0``), the gateway/DHCP address and dnsmasq.
* host ``hb`` (namespace ``b``): the real flatnet-network with the
  compute role only; ``br100`` and its uplink are made here as a compute
  driver's VIF plugging does (nova ``LinuxBridgeInterfaceDriver``).
* the guest: a namespace whose NIC ``eth0`` (a bridge there, with the
  allocated MAC and the address DHCP gives) reaches a host's ``br100``
  through one veth pair (``n<host>`` in the guest, a tap on the host).
  Live migration plugs a second pair on the destination beforehand
  (libvirt starts the incoming guest with its tap) and switches the NIC
  over to it in one ``ip -batch``: the guest's MAC and address stay,
  and no link goes down (moving a veth end between namespaces would
  drop its carrier, and the kernel's linkwatch can then hold its
  transmit queue for up to a second, which no real tap sees).

``br_netfilter`` calls iptables for bridged frames in both hosts'
namespaces (only there), so each host's instance chains filter the
guest's traffic where the guest is.
"""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from tests.functional import netns
from tests.functional.dhcp_site import BIN, UDHCPC_SCRIPT, Client, wait_for

CIDR = "10.233.0.0/24"
GATEWAY = "10.233.0.1"
PEER = "10.233.0.250"
HOSTS = ("ha", "hb")

#: both ends of a UDP stream: send a numbered datagram every ``gap``
#: seconds to (addr, port), record the arrival time of each datagram
#: received on ``port``; on SIGTERM print the arrival times as JSON.
STREAM = r"""
import json, signal, socket, sys, threading, time
addr, port, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
s.settimeout(0.2)
got, stop = [], threading.Event()
def send():
    n = 0
    while not stop.is_set():
        n += 1
        try:
            s.sendto(str(n).encode(), (addr, port))
        except OSError:
            pass
        time.sleep(gap)
def done(*_):
    stop.set()
signal.signal(signal.SIGTERM, done)
threading.Thread(target=send, daemon=True).start()
print("up", flush=True)
while not stop.is_set():
    try:
        s.recv(64)
        got.append(time.monotonic())
    except OSError:
        pass
print(json.dumps(got), flush=True)
"""


class Stream:
    """One end of the UDP stream, in namespace ``ns``."""

    def __init__(self, ns: str, to: str, port: int, gap: float) -> None:
        self.proc = netns.popen(
            [sys.executable, "-c", STREAM, to, str(port), str(gap)],
            netns=ns, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "up"

    def stop(self) -> list[float]:
        """Arrival times (time.monotonic, shared by every namespace)."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        return list(json.loads(out.strip().splitlines()[-1]))


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time without a datagram between start and end."""
    inside = [start, *(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in zip(inside, inside[1:], strict=False))


class TwoHosts:
    def __init__(
        self, make_netns: Callable[[str], str], tmp: pathlib.Path
    ) -> None:
        self.make_netns, self.tmp = make_netns, tmp
        self.db_url = f"sqlite:///{tmp}/flatnet.sqlite"
        self.switch = make_netns("sw")
        self.ns = {"ha": make_netns("ha"), "hb": make_netns("hb")}
        self.daemons: dict[str, subprocess.Popen[str]] = {}
        self.clients: list[Client] = []
        self.procs: list[subprocess.Popen[str]] = []
        sw = self.switch
        netns.run(["ip", "link", "add", "sw0", "type", "bridge"], netns=sw)
        netns.run(["ip", "addr", "add", f"{PEER}/24", "dev", "sw0"], netns=sw)
        netns.run(["ip", "link", "set", "sw0", "up"], netns=sw)
        for host, ns in self.ns.items():
            netns.veth(ns, "fi0", sw, f"up{host}")
            netns.run(["ip", "link", "set", f"up{host}", "master", "sw0"], sw)
            netns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=ns)
            netns.run(
                ["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"], ns
            )
            self._conf(host, ("network", "compute") if host == "ha" else ())
        b = self.ns["hb"]
        netns.run(["ip", "link", "add", "br100", "type", "bridge"], netns=b)
        netns.run(["ip", "link", "set", "fi0", "master", "br100"], netns=b)
        netns.run(["ip", "link", "set", "br100", "up"], netns=b)
        self.script = tmp / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)

    def _conf(self, host: str, extra_roles: tuple[str, ...]) -> None:
        state = self.tmp / host
        state.mkdir(mode=0o755)
        roles = ",".join(extra_roles) if extra_roles else "compute"
        conf = state / "flatnet.conf"
        conf.write_text(
            "[DEFAULT]\n"
            f"host = {host}\nflatnet_roles = {roles}\n"
            f"state_path = {state}\nnetworks_path = {state}/networks\n"
            "flat_interface = fi0\n"
            f"dhcpbridge = {BIN / 'flatnet-dhcpbridge'}\n"
            f"dhcpbridge_flagfile = {conf}\n"
            "sync_interval = 0.05\nperiodic_interval = 1\n"
            "dhcp_lease_time = 120\nallow_same_net_traffic = false\n"
            "iptables_backend = restore\n"
            f"[database]\nconnection = {self.db_url}\n"
        )

    def conf(self, host: str) -> pathlib.Path:
        return self.tmp / host / "flatnet.conf"

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / "flatnet-manage"), args[0], args[1],
                "--config-file", str(self.conf("ha")), *args[2:]]  # fmt: skip
        return netns.run(argv, timeout=60)

    # --- the services -----------------------------------------------------
    def start(self, host: str) -> None:
        log = (self.tmp / host / "daemon.log").open("a")
        self.daemons[host] = netns.popen(
            [str(BIN / "flatnet-network"), "--config-file",
             str(self.conf(host))],
            netns=self.ns[host], stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def kill(self, host: str) -> None:
        """kill -9 the host's flatnet-network (dnsmasq stays)."""
        proc = self.daemons.pop(host)
        proc.kill()
        proc.wait()

    def log(self, host: str) -> str:
        return (self.tmp / host / "daemon.log").read_text()

    # --- the guest ---------------------------------------------------------
    def plug(self, mac: str, host: str) -> str:
        """A guest namespace whose NIC ``eth0`` (``mac``) is on
        ``host``'s br100; returns the namespace."""
        guest = self.make_netns("g")
        netns.run(["ip", "link", "add", "eth0", "address", mac,
                   "type", "bridge"], netns=guest)  # fmt: skip
        netns.run(["ip", "link", "set", "eth0", "up"], netns=guest)
        self.attach(guest, host)
        netns.run(["ip", "link", "set", f"n{host}", "master", "eth0"], guest)
        return guest

    def attach(self, guest: str, host: str) -> None:
        """A tap on ``host``'s br100, up, whose other end ``n<host>``
        waits in the guest, not yet its NIC's: libvirt creates the
        destination's tap when the incoming guest starts, before the
        switch-over."""
        ns, port = self.ns[host], f"n{host}"
        tap = netns.unique_name("tap")
        netns.run(["ip", "link", "add", tap, "type", "veth", "peer",
                   "name", port, "netns", guest], netns=ns)  # fmt: skip
        netns.run(
            ["sysctl", "-qw", f"net.ipv6.conf.{port}.disable_ipv6=1"], guest
        )
        netns.run(["ip", "link", "set", tap, "master", "br100", "up"], ns)
        netns.run(["ip", "link", "set", port, "up"], netns=guest)
        # operstate UP once the kernel's linkwatch activated the links'
        # queues (it may hold that up to 1 s; a real destination tap is
        # up for the whole memory copy before the switch-over)
        until(lambda: _oper_up(ns, tap) and _oper_up(guest, port), 5.0)

    def switch_over(self, guest: str, src: str, dst: str) -> float:
        """The guest stops on ``src`` and runs on ``dst``: its NIC's
        frames leave through ``dst``'s tap from now on (one ``ip
        -batch``, attaching before detaching: a NIC left without a port
        for a moment loses its carrier, which cost up to 1 s of
        traffic towards the guest); returns how long that took (s).
        Then ``src``'s tap goes, as the source's qemu exits."""
        start = time.monotonic()
        netns.run(["ip", "netns", "exec", guest, "ip", "-b",
                   self._batch(src, dst)])  # fmt: skip
        took = time.monotonic() - start
        # the hypervisor's announce after a migration (qemu announce-
        # self): the segment's switches and neighbours learn the move
        netns.run(["arping", "-q", "-U", "-c", "1", "-I", "eth0",
                   self.address(guest)], netns=guest, check=False)  # fmt: skip
        netns.run(["ip", "link", "del", f"n{src}"], netns=guest)
        return took

    def address(self, guest: str) -> str:
        """The guest's IPv4 address (what DHCP gave it)."""
        out = netns.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
                        netns=guest).stdout  # fmt: skip
        return out.split()[3].split("/")[0]

    def _batch(self, src: str, dst: str) -> str:
        path = self.tmp / f"switch-{src}-{dst}.batch"
        path.write_text(
            f"link set n{dst} master eth0\nlink set n{src} nomaster\n"
        )
        return str(path)

    def client(self, guest: str) -> Client:
        made = Client(guest, self.tmp / f"{guest}.log", self.script)
        self.clients.append(made)
        return made

    def chain(self, host: str, instance_id: int) -> bool:
        """Whether ``host`` has the instance's iptables chain."""
        out = netns.run(["iptables-save", "-t", "filter"],
                        netns=self.ns[host]).stdout  # fmt: skip
        return f":nova-compute-inst-{instance_id} " in out

    def filtered(self, host: str, instance_id: int) -> int:
        """Packets ``host`` sent through the instance's chain (the
        counter of the ``local`` chain's jump to it)."""
        chain = f"nova-compute-inst-{instance_id}"
        out = netns.run(["iptables", "-nvxL", "nova-compute-local"],
                        netns=self.ns[host]).stdout  # fmt: skip
        return sum(
            int(line.split()[0])
            for line in out.splitlines()
            if f" {chain} " in f" {line} "
        )

    def listen(self, guest: str, port: int) -> None:
        """A TCP listener in the guest (killed with its namespace)."""
        code = (
            "import socket,time\ns=socket.socket()\n"
            f"s.bind(('0.0.0.0',{port}))\ns.listen(8)\n"
            "while True: s.accept()\n"
        )
        self.procs.append(
            netns.popen([sys.executable, "-c", code], netns=guest)
        )

    def can_connect(self, src_ns: str, address: str, port: int) -> bool:
        code = (
            "import socket,sys\ntry:\n"
            f" socket.create_connection(({address!r},{port}),timeout=1)\n"
            "except OSError:\n sys.exit(1)\n"
        )
        argv = [sys.executable, "-c", code]
        return netns.run(argv, netns=src_ns, check=False).returncode == 0

    def close(self) -> None:
        for client in self.clients:
            client.stop()
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for host in list(self.daemons):
            self.kill(host)


def _oper_up(ns: str, dev: str) -> bool:
    out = netns.run(["ip", "-o", "link", "show", "dev", dev], netns=ns).stdout
    return " state UP " in out


def until(check: Callable[[], object], timeout: float = 20.0) -> None:
    wait_for(check, timeout, repr(check))
