"""make demo: a one-host flatnet cloud in network namespaces.

1. writes a config and creates the database (flatnet-manage db sync);
2. creates network "private" 10.0.0.0/24 on br100 and a floating pool;
3. starts flatnet-network in the "nethost" namespace (bridge, dnsmasq,
   iptables rules all live there);
4. creates three instances and boots each as a namespace whose NIC has
   the allocated MAC; a real DHCP client (busybox udhcpc) gets the lease;
5. each instance fetches http://169.254.169.254/ (metadata DNAT to a
   stand-in metadata server on the network host), and a floating IP
   reaches vm1 from an "outside" namespace;
6. prints a table and removes everything.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from sandbox import Sandbox, sh  # noqa: E402

BIN = pathlib.Path(sys.prefix) / "bin"
HERE = pathlib.Path(__file__).resolve().parent
INSTANCES = ("vm1", "vm2", "vm3")
PUBLIC_IP = "172.24.4.1"
OUTSIDE_IP = "172.24.4.254"
FLOATING_RANGE = "172.24.4.16/28"

CONFIG = """[DEFAULT]
host = demo-host
state_path = {state}
flat_network_bridge = br100
flat_interface = eth2
public_interface = eth1
my_ip = {public_ip}
routing_source_ip = {public_ip}
metadata_host = {public_ip}
metadata_port = 8775
dhcpbridge_flagfile = {conf}
dhcp_lease_time = 120
fixed_ip_disassociate_timeout = 60
sync_interval = 0.1
# the network role only: with the compute role the instances' chains
# drop what no security-group rule admits (nova's behaviour), and this
# demo has no security groups yet
flatnet_roles = network

[database]
connection = sqlite:///{state}/flatnet.sqlite
"""


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def manage(conf: pathlib.Path, *args: str) -> str:
    return sh([str(BIN / "flatnet-manage"), "--config-file", str(conf), *args])


def write_config(workdir: pathlib.Path) -> pathlib.Path:
    conf = workdir / "flatnet.conf"
    state = workdir / "state"
    state.mkdir()
    conf.write_text(CONFIG.format(state=state, conf=conf, public_ip=PUBLIC_IP))
    return conf


def build_host(box: Sandbox) -> tuple[str, str]:
    """The network host with its flat and public NICs, and 'outside'."""
    host = box.ns("nethost")
    lan = box.ns("lan")
    outside = box.ns("outside")
    box.veth(host, "eth2", lan, "lan0")
    box.veth(host, "eth1", outside, "eth0")
    sh(["ip", "addr", "add", f"{PUBLIC_IP}/24", "dev", "eth1"], netns=host)
    sh(["ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0"], netns=outside)
    # Routing is needed inside the sandbox only (each netns has its own).
    sh(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=host)
    return host, outside


def start_metadata_server(host: str, workdir: pathlib.Path) -> None:
    """A stand-in for the metadata API: answers with the caller's IP."""
    script = HERE / "metadata_standin.py"
    log = open(workdir / "metadata.log", "w")  # noqa: SIM115
    subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            host,
            sys.executable,
            str(script),
            PUBLIC_IP,
            "8775",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def start_daemon(
    host: str, conf: pathlib.Path, workdir: pathlib.Path
) -> subprocess.Popen[bytes]:
    log = open(workdir / "flatnet-network.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            host,
            str(BIN / "flatnet-network"),
            "--config-file",
            str(conf),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def boot(box: Sandbox, host: str, name: str, mac: str, index: int) -> str:
    """Plug an instance namespace into br100 (what a compute driver's
    plug_vifs does with a tap) and return the namespace name."""
    vm = box.ns(name)
    tap = f"tap{index}"
    box.veth(host, tap, vm, "eth0", mac_b=mac)
    sh(["ip", "link", "set", tap, "master", "br100"], netns=host)
    return vm


def dhcp(vm: str) -> dict[str, str]:
    out = sh(
        [
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-t",
            "5",
            "-T",
            "1",
            "-s",
            str(HERE / "udhcpc-script.sh"),
        ],
        netns=vm,
        timeout=30,
    )
    lease: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("LEASE "):
            for field in line.split()[1:]:
                key, _, value = field.partition("=")
                lease[key] = value
    if "ip" not in lease:
        raise RuntimeError(f"{vm}: no DHCP lease: {out}")
    return lease


def fetch(url: str, netns: str) -> str:
    return sh(
        [sys.executable, str(HERE / "http_get.py"), url],
        netns=netns,
        check=False,
        timeout=15,
    ).strip()


def serve(netns: str, address: str, port: int) -> None:
    """A stand-in HTTP server answering "hello <client> from <server>"."""
    subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable,
         str(HERE / "metadata_standin.py"), address, str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def retry_fetch(url: str, netns: str, tries: int = 50) -> str:
    for _ in range(tries):
        answer = fetch(url, netns)
        if answer:
            return answer
        time.sleep(0.2)
    return ""


def show_repair(host: str, conf: pathlib.Path, vm: str) -> bool:
    """Flush a chain of ours behind flatnet's back, then verify/repair."""
    cli = [str(BIN / "flatnet-manage"), "--config-file", str(conf)]
    sh(["iptables", "-t", "nat", "-F", "nova-network-PREROUTING"],
       netns=host)  # fmt: skip
    url = "http://169.254.169.254/"
    broken = fetch(url, vm)
    diff = sh([*cli, "verify"], netns=host, check=False).splitlines()
    print(
        f"    after the flush: metadata {'works' if broken else 'broken'}"
        f"; verify reports {len(diff)} difference(s), e.g. {diff[0]}"
    )
    sh([*cli, "repair"], netns=host)
    fixed = fetch(url, vm)
    clean = sh([*cli, "verify"], netns=host).strip()
    print(
        f"    after repair: metadata {'works' if fixed else 'broken'}; "
        f"verify says: {clean}"
    )
    return bool(fixed) and not broken


def print_table(
    rows: list[tuple[str, str, str, dict[str, str], str]],
    metadata: dict[str, str],
    floating: str,
    seen: dict[str, list[str]],
) -> bool:
    """Print the final table; True if every instance got what it should."""
    print(
        f"{'instance':<9} {'MAC':<18} {'fixed IP':<10} {'DHCP lease':<10}"
        f" {'lease s':>7} {'metadata':<9} {'floating':<12} "
        "outbound seen as"
    )
    ok = True
    for name, mac, address, lease, _ in rows:
        expect = floating if name == "vm1" else PUBLIC_IP
        source = "".join(seen.get(name, []))
        good = (
            lease["ip"] == address
            and bool(metadata[name])
            and source == expect
        )
        ok = ok and good
        print(
            f"{name:<9} {mac:<18} {address:<10} {lease['ip']:<10} "
            f"{lease.get('lease', '?'):>7} "
            f"{'ok' if metadata[name] else 'FAILED':<9} "
            f"{floating if name == 'vm1' else '-':<12} "
            f"{source or 'NOTHING'}"
        )
    return ok


def _show_log_on_failure(workdir: pathlib.Path) -> None:
    """Print the daemon log's tail if it logged an error (the folder is
    removed next)."""
    log = workdir / "flatnet-network.log"
    lines = log.read_text().splitlines() if log.exists() else []
    if any(" ERROR " in line for line in lines):
        print("flatnet-network log (last 20 lines):")
        print("\n".join(lines[-20:]))


def main() -> int:  # noqa: PLR0915
    if os.geteuid() != 0:
        print("make demo needs root (network namespaces)", file=sys.stderr)
        return 2
    tag = uuid.uuid4().hex[:4]
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="flatnet-demo-"))
    workdir.chmod(0o755)  # dnsmasq drops to nobody and reads files here
    box = Sandbox(tag)
    daemon = None
    try:
        step(f"sandbox {tag}: config and database in {workdir}")
        conf = write_config(workdir)
        manage(conf, "db", "sync")
        manage(
            conf,
            "network",
            "create",
            "--label",
            "private",
            "--fixed-range-v4",
            "10.0.0.0/24",
            "--bridge",
            "br100",
            "--bridge-interface",
            "eth2",
            "--dns1",
            "8.8.4.4",
        )
        manage(
            conf,
            "floating",
            "create",
            "--ip-range",
            FLOATING_RANGE,
            "--pool",
            "public",
            "--interface",
            "eth1",
        )
        print(manage(conf, "network", "list"))

        step("network host namespace; starting flatnet-network in it")
        host, outside = build_host(box)
        start_metadata_server(host, workdir)
        daemon = start_daemon(host, conf, workdir)

        rows = []
        for index, name in enumerate(INSTANCES, start=1):
            step(f"instance create {name} --wait (DHCP entry live)")
            info = json.loads(
                manage(
                    conf,
                    "instance",
                    "create",
                    name,
                    "--host",
                    "demo-host",
                    "--wait",
                    "--format",
                    "json",
                )
            )
            vif = info["interfaces"][0]
            vm = boot(box, host, name, vif["mac"], index)
            started = time.monotonic()
            lease = dhcp(vm)
            took = time.monotonic() - started
            print(
                f"    {name}: udhcpc got {lease['ip']} in {took:.2f} s "
                f"(router {lease.get('router')}, dns {lease.get('dns')},"
                f" {lease.get('hostname')}.{lease.get('domain')})"
            )
            rows.append((name, vif["mac"], vif["address"], lease, vm))

        step("metadata: each instance fetches http://169.254.169.254/")
        metadata = {
            name: fetch("http://169.254.169.254/latest/meta-data/", vm)
            for name, _, _, _, vm in rows
        }
        for name, answer in metadata.items():
            print(f"    {name}: {answer or 'NO ANSWER'}")

        step("floating IP: associate one with vm1, reach it from outside")
        floating = json.loads(
            manage(conf, "floating", "list", "--format", "json")
        )[0]["address"]
        manage(conf, "floating", "associate", "--address", floating,
               "--instance", "vm1")  # fmt: skip
        vm1 = rows[0][4]
        serve(vm1, rows[0][2], 80)
        inbound = retry_fetch(f"http://{floating}/", outside)
        print(f"    outside -> {floating}: {inbound or 'NO ANSWER'}")

        step("outbound: who does the outside see? (floating IP / SNAT)")
        serve(outside, OUTSIDE_IP, 80)
        seen = {
            name: retry_fetch(f"http://{OUTSIDE_IP}/", vm).split(" ")[1:2]
            for name, _, _, _, vm in rows
        }
        for name, source in seen.items():
            print(f"    {name} -> outside: seen as {''.join(source)}")

        step("drift: someone flushes our metadata DNAT; verify, repair")
        repaired = show_repair(host, conf, rows[1][4])

        step("result")
        ok = print_table(rows, metadata, floating, seen) and bool(inbound)
        ok = ok and repaired
        print("demo " + ("succeeded" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        if os.environ.get("FLATNET_DEMO_KEEP"):
            names = " ".join(box.namespaces)
            print(
                f"FLATNET_DEMO_KEEP: sandbox {tag} and {workdir} left; remove "
                f"it with: for n in {names}; do ip netns pids $n | "
                "xargs -r kill -9; ip netns delete $n; done"
            )
        else:
            if daemon is not None:
                daemon.terminate()
                daemon.wait(timeout=10)
            box.close()
            _show_log_on_failure(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"sandbox {tag} and {workdir} removed")


if __name__ == "__main__":
    sys.exit(main())
