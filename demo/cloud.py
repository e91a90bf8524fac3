"""The demo's single-host FlatDHCP deployment (both forms share it).

A config and a SQLite database in a work folder, network "private"
10.0.0.0/24, a floating pool, security group "web" (tcp/80 and icmp
from anywhere), and a "nethost" namespace running flatnet-network
(``flatnet_roles = network, compute``: bridge, dnsmasq, host NAT rules
and the instances' filters) and the real flatnet-metadata behind
flatnet's 169.254.169.254 DNAT. An "outside" namespace plays the
internet on the public side.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

from sandbox import Sandbox, sh

BIN = pathlib.Path(sys.prefix) / "bin"
HERE = pathlib.Path(__file__).resolve().parent
HOST = "demo-host"
PUBLIC_IP = "172.24.4.1"
OUTSIDE_IP = "172.24.4.254"
FLOATING_RANGE = "172.24.4.16/28"
FIXED_RANGE = "10.0.0.0/24"
GATEWAY = "10.0.0.1"
METADATA_PORT = 8775

CONFIG = """[DEFAULT]
host = {host}
state_path = {state}
flat_network_bridge = {bridge}
flat_interface = eth2
public_interface = eth1
my_ip = {public_ip}
routing_source_ip = {public_ip}
metadata_host = {public_ip}
metadata_port = {port}
metadata_listen = {public_ip}
metadata_listen_port = {port}
dhcpbridge_flagfile = {conf}
dhcp_lease_time = 120
fixed_ip_disassociate_timeout = 60
sync_interval = 0.1
# one host does both jobs: bridge, dnsmasq and NAT (network), and the
# instances' security-group chains (compute); nwfilters with real VMs
flatnet_roles = network, compute
use_nwfilter = {nwfilter}

[database]
connection = sqlite:///{state}/flatnet.sqlite
"""


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def manage(
    conf: pathlib.Path,
    *args: str,
    netns: str | None = None,
    check: bool = True,
) -> str:
    argv = [str(BIN / "flatnet-manage"), "--config-file", str(conf), *args]
    return sh(argv, netns=netns, check=check)


def write_config(
    workdir: pathlib.Path, bridge: str, nwfilter: bool
) -> pathlib.Path:
    conf = workdir / "flatnet.conf"
    state = workdir / "state"
    state.mkdir()
    conf.write_text(
        CONFIG.format(
            host=HOST,
            state=state,
            conf=conf,
            public_ip=PUBLIC_IP,
            bridge=bridge,
            port=METADATA_PORT,
            nwfilter=nwfilter,
        )  # fmt: skip
    )
    return conf


def create_network(conf: pathlib.Path, bridge: str) -> None:
    """db sync, network "private" and the floating pool."""
    manage(conf, "db", "sync")
    manage(conf, "network", "create", "--label", "private",
           "--fixed-range-v4", FIXED_RANGE, "--bridge", bridge,
           "--bridge-interface", "eth2", "--dns1", "8.8.4.4")  # fmt: skip
    manage(conf, "floating", "create", "--ip-range", FLOATING_RANGE,
           "--pool", "public", "--interface", "eth1")  # fmt: skip
    print(manage(conf, "network", "list"), end="")


def create_web_group(conf: pathlib.Path) -> None:
    """Security group web: tcp/80 and icmp from anywhere."""
    manage(conf, "secgroup", "create", "web", "--description", "demo")
    manage(conf, "secgroup", "rule-add", "web", "--protocol", "tcp",
           "--port-range", "80:80", "--cidr", "0.0.0.0/0")  # fmt: skip
    manage(conf, "secgroup", "rule-add", "web", "--protocol", "icmp",
           "--icmp-type", "-1", "--icmp-code", "-1")  # fmt: skip
    print(manage(conf, "secgroup", "show", "web"), end="")


def build_host(box: Sandbox) -> tuple[str, str]:
    """The network host namespace with its public NIC, and 'outside'
    (its flat NIC eth2 is plugged in by the form)."""
    host = box.ns("nethost")
    outside = box.ns("outside")
    box.veth(host, "eth1", outside, "eth0")
    sh(["ip", "addr", "add", f"{PUBLIC_IP}/24", "dev", "eth1"], netns=host)
    sh(["ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0"], netns=outside)
    # the outside reaches the fixed range through the host (routed)
    sh(["ip", "route", "add", FIXED_RANGE, "via", PUBLIC_IP], netns=outside)
    # routing and bridged-frame filtering inside the sandbox only (each
    # namespace has its own sysctls; the root namespace is untouched)
    sh(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=host)
    sh(["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"], netns=host)
    return host, outside


def _spawn(
    netns: str, argv: list[str], log: pathlib.Path
) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def start_services(
    host: str, conf: pathlib.Path, workdir: pathlib.Path
) -> list[subprocess.Popen[bytes]]:
    """flatnet-network and flatnet-metadata in the host namespace."""
    cfg = ["--config-file", str(conf)]
    procs = [
        _spawn(host, [str(BIN / "flatnet-network"), *cfg],
               workdir / "flatnet-network.log"),
        _spawn(host, [str(BIN / "flatnet-metadata"), *cfg],
               workdir / "flatnet-metadata.log"),
    ]  # fmt: skip
    wait_listening(host, PUBLIC_IP, METADATA_PORT, procs[1])
    return procs


def wait_listening(
    netns: str, address: str, port: int, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = sh(["ss", "-Hltn", f"sport = :{port}"], netns=netns)
        if f"{address}:{port}" in out:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {address}:{port} in {netns}")


def stop_services(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def show_log_on_failure(workdir: pathlib.Path) -> None:
    """The services' log tails if they logged an error (the folder is
    removed next)."""
    for name in ("flatnet-network.log", "flatnet-metadata.log"):
        log = workdir / name
        lines = log.read_text().splitlines() if log.exists() else []
        if any(" ERROR " in line for line in lines):
            print(f"{name} (last 20 lines):")
            print("\n".join(lines[-20:]))


def can_connect(netns: str, address: str, port: int) -> bool:
    """A TCP connect from ``netns`` within 2 s (python, no curl)."""
    code = (
        "import socket,sys\n"
        "s=socket.socket();s.settimeout(2)\n"
        f"sys.exit(s.connect_ex(({address!r},{port})))\n"
    )
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", code],
        capture_output=True, timeout=15, check=False,
    )  # fmt: skip
    return done.returncode == 0


def serve(netns: str, address: str, port: int) -> subprocess.Popen[bytes]:
    """A hello server (answers "hello <client> from <server>"); it dies
    with its namespace."""
    return subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable,
         str(HERE / "hello_server.py"), address, str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
