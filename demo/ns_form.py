"""The demo without VMs (``make demo NO_VM=1``, or no qemu/libvirt):
each instance is a network namespace whose NIC has the allocated MAC,
plugged into the flat bridge as a compute driver's plug_vifs would plug
a tap; busybox udhcpc gets the lease, a python HTTP client fetches the
instance-id from 169.254.169.254 (flatnet-metadata behind flatnet's
DNAT), the security group's chain is tried from outside (tcp/80
passes, tcp/81 is dropped), a floating IP reaches vm1, and the
outside sees the instances' traffic SNATed.

Layout (everything in namespaces named ``fn<tag>-*``)::

    [outside] eth0 --- eth1 [nethost] br100 10.0.0.1/24 --- eth2 -- [lan]
                                        |    |    |
                                      tap1 tap2 tap3 -- eth0 [vm1] [vm2] [vm3]
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import cloud
from cloud import OUTSIDE_IP, PUBLIC_IP, can_connect, manage, step
from sandbox import Sandbox, sh

HERE = pathlib.Path(__file__).resolve().parent
INSTANCES = ("vm1", "vm2", "vm3")
BRIDGE = "br100"
MD_URL = "http://169.254.169.254/2009-04-04/meta-data/instance-id"

Row = dict[str, str]


def plug_flat_interface(box: Sandbox, host: str) -> None:
    """eth2 (flat_interface) leads to a 'lan' namespace."""
    box.veth(host, "eth2", box.ns("lan"), "lan0")


def boot(box: Sandbox, host: str, name: str, mac: str, index: int) -> str:
    vm = box.ns(name)
    tap = f"tap{index}"
    box.veth(host, tap, vm, "eth0", mac_b=mac)
    sh(["ip", "link", "set", tap, "master", BRIDGE], netns=host)
    return vm


def dhcp(vm: str) -> dict[str, str]:
    out = sh(
        ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "5", "-T", "1",
         "-s", str(HERE / "udhcpc-script.sh")],
        netns=vm, timeout=30,
    )  # fmt: skip
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
        netns=netns, check=False, timeout=15,
    ).strip()  # fmt: skip


def retry_fetch(url: str, netns: str, tries: int = 50) -> str:
    for _ in range(tries):
        answer = fetch(url, netns)
        if answer:
            return answer
        time.sleep(0.2)
    return ""


def create_and_boot(
    box: Sandbox, host: str, conf: pathlib.Path
) -> list[tuple[Row, str]]:
    rows = []
    for index, name in enumerate(INSTANCES, start=1):
        step(f"instance create {name} --secgroup web --wait "
             "(DHCP entry and filters live)")  # fmt: skip
        info = json.loads(manage(
            conf, "instance", "create", name, "--host", cloud.HOST,
            "--secgroup", "web", "--wait", "--format", "json",
        ))  # fmt: skip
        vif = info["interfaces"][0]
        vm = boot(box, host, name, vif["mac"], index)
        started = time.monotonic()
        lease = dhcp(vm)
        print(
            f"    {name}: udhcpc got {lease['ip']} in "
            f"{time.monotonic() - started:.2f} s (router "
            f"{lease.get('router')}, {lease.get('hostname')}."
            f"{lease.get('domain')})"
        )
        row = {
            "instance": name,
            "mac": vif["mac"],
            "ip": vif["address"],
            "lease": lease["ip"],
            "lease_s": lease.get("lease", "?"),
        }
        rows.append((row, vm))
    return rows


def check_filters(rows: list[tuple[Row, str]], outside: str) -> bool:
    """Security group web: tcp/80 from outside passes, tcp/81 does not."""
    step("security group web from outside: tcp/80 allowed, tcp/81 not")
    ok = True
    for row, vm in rows:
        for port in (80, 81):
            server = cloud.serve(vm, row["ip"], port)
            cloud.wait_listening(vm, row["ip"], port, server)
    for row, _vm in rows:
        open80 = can_connect(outside, row["ip"], 80)
        open81 = can_connect(outside, row["ip"], 81)
        good = open80 and not open81
        ok = ok and good
        row["filter"] = (
            f"tcp/80 {'passes' if open80 else 'DROPPED'}, "
            f"tcp/81 {'dropped' if not open81 else 'PASSES'}"
        )
        print(f"    {row['instance']}: {row['filter']}")
    return ok


def floating_and_snat(
    conf: pathlib.Path, rows: list[tuple[Row, str]], outside: str
) -> bool:
    step("floating IP: associate one with vm1, reach it from outside")
    floating = json.loads(
        manage(conf, "floating", "list", "--format", "json")
    )[0]["address"]
    manage(conf, "floating", "associate", "--address", floating,
           "--instance", "vm1")  # fmt: skip
    inbound = retry_fetch(f"http://{floating}/", outside)
    print(f"    outside -> {floating}: {inbound or 'NO ANSWER'}")
    step("outbound: who does the outside see? (floating IP / SNAT)")
    cloud.serve(outside, OUTSIDE_IP, 80)
    ok = bool(inbound)
    for row, vm in rows:
        answer = retry_fetch(f"http://{OUTSIDE_IP}/", vm).split(" ")[1:2]
        seen = "".join(answer)
        expect = floating if row["instance"] == "vm1" else PUBLIC_IP
        ok = ok and seen == expect
        print(f"    {row['instance']} -> outside: seen as {seen or 'NOTHING'}")
    return ok


def show_repair(host: str, conf: pathlib.Path, vm: str) -> bool:
    """Flush a chain of ours behind flatnet's back, then verify/repair."""
    step("drift: someone flushes our metadata DNAT; verify, repair")
    sh(["iptables", "-t", "nat", "-F", "nova-network-PREROUTING"],
       netns=host)  # fmt: skip
    broken = fetch(MD_URL, vm)
    diff = manage(conf, "verify", netns=host, check=False).splitlines()
    print(
        f"    after the flush: metadata {'works' if broken else 'broken'}"
        f"; verify reports {len(diff)} difference(s), e.g. {diff[:1]}"
    )
    manage(conf, "repair", netns=host)
    fixed = fetch(MD_URL, vm)
    clean = manage(conf, "verify", netns=host).strip()
    print(
        f"    after repair: metadata {'works' if fixed else 'broken'}; "
        f"verify says: {clean}"
    )
    return bool(fixed) and not broken


def run(
    box: Sandbox, conf: pathlib.Path, host: str, outside: str
) -> tuple[bool, list[Row]]:
    """The instances and their checks: (all passed, table rows)."""
    rows = create_and_boot(box, host, conf)
    step(f"metadata: each instance fetches {MD_URL}")
    for row, vm in rows:
        row["metadata"] = fetch(MD_URL, vm) or "NO-ANSWER"
        print(f"    {row['instance']}: {row['metadata']}")
    ok = all(r["metadata"].startswith("i-") for r, _ in rows)
    ok = check_filters(rows, outside) and ok
    ok = floating_and_snat(conf, rows, outside) and ok
    ok = show_repair(host, conf, rows[1][1]) and ok
    return ok, [row for row, _ in rows]
