"""Takeover of a live nova-network host (root only).

A nova 16.0.0 database is imported; dnsmasq is started with nova's exact
command line (nova/network/linux_net.py restart_dhcp; the argv of
nova/tests/unit/network/test_linux_net.py _test_dnsmasq_execute) on
nova's files, with a stand-in nova-dhcpbridge that answers ``init``
from nova's leases. busybox udhcpc clients bind, then renew in a loop
while flatnet-network starts over it (same networks_path and bridge).
No renewal may be NAKed, every one must be answered, and the clients'
longest wait for an answer (the takeover gap, from the clients' side)
is printed.
"""

from __future__ import annotations

import os
import pathlib
import signal
import statistics
import subprocess
import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine

from flatnet.db import api as db_api
from flatnet.migrate import nova_import, writer
from tests import nova_schema
from tests.functional import netns
from tests.functional.dhcp_site import BIN, UDHCPC_SCRIPT, Client, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

CIDR = "10.234.0.0/24"
GW = "10.234.0.1"
CLIENTS = 3
BRIDGE_SCRIPT = """#!/bin/sh
# stand-in nova-dhcpbridge: ``init`` prints nova's leases (linux_net
# get_dhcp_leases), every other event is accepted and ignored.
[ "$1" = init ] && cat "{leases}"
exit 0
"""


def nova_argv(np: str, script: str) -> list[str]:
    """nova 16.0.0 restart_dhcp, network id 1 'private', br100."""
    return [
        "env", 'CONFIG_FILE=["/etc/nova/nova-dhcpbridge.conf"]',
        "NETWORK_ID=1", "dnsmasq", "--strict-order", "--bind-interfaces",
        "--conf-file=", f"--pid-file={np}/nova-br100.pid",
        f"--dhcp-optsfile={np}/nova-br100.opts", f"--listen-address={GW}",
        "--except-interface=lo",
        "--dhcp-range=set:private,10.234.0.2,static,255.255.255.0,120s",
        "--dhcp-lease-max=256", f"--dhcp-hostsfile={np}/nova-br100.conf",
        f"--dhcp-script={script}", "--no-hosts", "--leasefile-ro",
        "--domain=novalocal",
    ]  # fmt: skip


class Renewer(threading.Thread):
    """Renew one client over and over; record (sent, answered, kind)."""

    def __init__(self, client: Client, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.halt = stop
        self.answers: list[tuple[float, float, str]] = []

    def run(self) -> None:
        while not self.halt.is_set():
            sent = time.monotonic()
            try:
                kind = self.client.renew(timeout=45)
            except AssertionError:
                kind = "timeout"
            self.answers.append((sent, time.monotonic(), kind))
            time.sleep(0.05)


@pytest.fixture
def host(make_netns, world_readable_dir) -> dict[str, object]:
    tmp = world_readable_dir
    ns = make_netns("nh")
    wire = make_netns("wr")
    netns.veth(ns, "fi0", wire, "up0")
    for argv in (["ip", "link", "add", "br100", "type", "bridge"],
                 ["ip", "link", "set", "fi0", "master", "br100"],
                 ["ip", "addr", "add", f"{GW}/24", "dev", "br100"],
                 ["ip", "link", "set", "br100", "up"]):  # fmt: skip
        netns.run(argv, netns=ns)
    return {"ns": ns, "tmp": tmp, "make_netns": make_netns}


def _nova_files(tmp, ports) -> str:
    np = tmp / "networks"
    np.mkdir(mode=0o755)
    hosts = [f"{p.mac},{p.hostname}.novalocal,{p.address}" for p in ports]
    (np / "nova-br100.conf").write_text("\n".join(hosts))
    (np / "nova-br100.opts").write_text(f"3,{GW}")
    expiry = int(time.time()) + 120
    leases = [f"{expiry} {p.mac} {p.address} {p.hostname} *" for p in ports]
    (tmp / "nova-leases").write_text("\n".join(leases) + "\n")
    script = tmp / "nova-dhcpbridge"
    script.write_text(BRIDGE_SCRIPT.format(leases=tmp / "nova-leases"))
    script.chmod(0o755)
    return str(script)


def _serve_as_nova(host) -> tuple[str, str, int, list[Client]]:
    """nova's DB imported, nova's dnsmasq serving bound clients."""
    tmp, ns = host["tmp"], host["ns"]
    nova_url = f"sqlite:///{tmp}/nova.sqlite"
    engine = create_engine(nova_url)
    nova_schema.populate(engine, nova_schema.NovaData(cidr=CIDR))
    engine.dispose()
    db_url = f"sqlite:///{tmp}/flatnet.sqlite"
    db = db_api.Database(db_url)
    db_api.sync(db)
    nova_import.import_nova(db, nova_url)
    _, ports, _ = writer.read_inputs(db)
    db.dispose()
    script = _nova_files(tmp, ports)
    np = str(tmp / "networks")
    netns.run(nova_argv(np, script), netns=ns)
    nova_pid = int((tmp / "networks" / "nova-br100.pid").read_text())
    udhcpc = tmp / "udhcpc.sh"
    udhcpc.write_text(UDHCPC_SCRIPT)
    udhcpc.chmod(0o755)
    clients = []
    for port in sorted(ports, key=lambda p: int(p.address))[:CLIENTS]:
        vm = host["make_netns"]("vm")
        link = netns.unique_name("p")
        netns.veth(ns, link, vm, "eth0", mac_b=port.mac)
        netns.run(["ip", "link", "set", link, "master", "br100"], netns=ns)
        client = Client(vm, tmp / f"{vm}.log", udhcpc)
        clients.append(client)
        assert client.bound()["ip"] == str(port.address)
    return db_url, np, nova_pid, clients


def _start_flatnet(tmp, ns, np: str, db_url: str) -> tuple[Any, Any]:
    conf = tmp / "flatnet.conf"
    conf.write_text(
        f"[DEFAULT]\nhost = nethost\nstate_path = {tmp}\n"
        f"networks_path = {np}\nflat_interface = fi0\n"
        f"dhcpbridge = {BIN}/flatnet-dhcpbridge\n"
        f"dhcpbridge_flagfile = {conf}\nsync_interval = 0.05\n"
        "periodic_interval = 1\ndhcp_lease_time = 120\n"
        f"dhcp_domain = novalocal\n[database]\nconnection = {db_url}\n"
    )
    log = open(tmp / "daemon.log", "a")  # noqa: SIM115
    daemon = netns.popen(
        [str(BIN / "flatnet-network"), "--config-file", str(conf)],
        netns=ns, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return daemon, log


def test_flatnet_takes_over_nova_dnsmasq_without_a_nak(host):
    tmp, ns = host["tmp"], host["ns"]
    db_url, np, nova_pid, clients = _serve_as_nova(host)
    stop = threading.Event()
    renewers = [Renewer(c, stop) for c in clients]
    for r in renewers:
        r.start()
    daemon, log = _start_flatnet(tmp, ns, np, db_url)
    try:
        started = time.monotonic()

        def flatnet_dnsmasq() -> bool:
            try:
                pid = int((tmp / "networks" / "nova-br100.pid").read_text())
                argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                return False
            return pid != nova_pid and b"flatnet-dhcp-script" in argv

        wait_for(flatnet_dnsmasq, 30, "flatnet's dnsmasq")
        took_over = time.monotonic()
        time.sleep(3)  # renewals keep going against flatnet's dnsmasq
    finally:
        stop.set()
        for r in renewers:
            r.join(60)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(10)
        log.close()
        for client in clients:
            client.stop()
    answers = [a for r in renewers for a in r.answers]
    kinds = {a[2] for a in answers}
    assert kinds == {"renew"}, answers
    around = [a for a in answers if a[1] >= started - 1]
    assert any(a[0] >= took_over for a in around)
    waits = [a[1] - a[0] for a in answers]
    gap = max(waits)
    print(f"\ntakeover: {len(answers)} renewals by {CLIENTS} clients, "
          f"none NAKed; wait for an answer: median "
          f"{statistics.median(waits):.3f} s, longest {gap:.3f} s; "
          f"flatnet's dnsmasq up {took_over - started:.2f} s after the "
          "daemon started")  # fmt: skip
    # Every renewal was ACKed ("renew"): none NAKed, none timed out and
    # no client fell back to DISCOVER ("bound"). The gap is a figure
    # (doc/migration.md): udhcpc -T 1 resends after 1 s, so a gap just
    # over 1 s is one resend.
    assert os.path.exists(f"{np}/nova-br100.pid")
