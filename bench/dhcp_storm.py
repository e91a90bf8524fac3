"""DHCP storm benchmark (prints figures, asserts nothing; root only).

    .venv/bin/python bench/dhcp_storm.py [--hosts 10000] [--new 1000]

Builds a "host" namespace with a bridge named per run (``BRIDGE``,
10.240.0.0/16) and a "cli" namespace on the same L2 segment, a SQLite
database with ``--hosts`` allocated instances, and runs the real DHCP
reconciler + daemon loop (real dnsmasq, sh fast-path hook, journal
ingest) in the host namespace. Figures:

1. time for ``--new`` allocations (committed one by one) to become DHCP
   ready (host_state "dhcp" reaches the last generation), dnsmasq
   reloads/restarts during that storm;
2. longest window during that storm in which an existing client's
   DISCOVER got no OFFER (a raw-socket prober fires one every 5 ms);
3. DORA handshakes per second by a raw-socket client with many MACs,
   and the rate at which all their ``add`` events reached the database.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import dhcp_client
import netaddr

from flatnet.db import api as db_api
from flatnet.ipam import network_layout
from flatnet.linux.dhcp_release import DhcpRelease
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.model import LeaseEvent
from flatnet.plan import dnsmasq as plan
from flatnet.service import daemon, dhcp

SUBNET = "10.240.0.0/16"
SERVER = "10.240.0.1"
#: Unique per run: the shards' namespaces (fn-<bridge>-s<k>) are global,
#: so two benches at once must not share a bridge name (the environment
#: hands it to the --server process in the host namespace).
BRIDGE = os.environ.setdefault(
    "FLATNET_BENCH_BRIDGE", f"brb{os.getpid() % 100000}"
)


# --- server side (runs inside the host namespace) ------------------------
def _sh(*argv: str, ns: str | None = None) -> None:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    subprocess.run(full, check=True, capture_output=True)


def setup_namespaces(host: str, cli: str) -> None:
    for ns in (host, cli):
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "set", "lo", "up", ns=ns)
    _sh("ip", "link", "add", BRIDGE, "type", "bridge", ns=host)
    _sh("ip", "addr", "add", f"{SERVER}/16", "dev", BRIDGE, ns=host)
    _sh("ip", "link", "set", BRIDGE, "up", ns=host)
    _sh(
        "ip",
        "link",
        "add",
        "v0",
        "type",
        "veth",
        "peer",
        "name",
        "c0",
        "netns",
        cli,
        ns=host,
    )
    _sh("ip", "link", "set", "v0", "master", BRIDGE, "up", ns=host)
    _sh("ip", "link", "set", "c0", "up", ns=cli)


def teardown_namespaces(*names: str) -> None:
    """Kill every process left in ``names`` and delete the namespaces."""
    for ns in names:
        pids = subprocess.run(
            ["ip", "netns", "pids", ns],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def run_in_host(script: str, argv: list[str], prefix: str) -> None:
    """Run ``script --server`` in a fresh "host" namespace (a "cli" one
    on the same segment) with a throwaway flatnet.conf and state
    directory; remove them all after."""
    suffix = str(os.getpid())
    host, cli = f"{prefix}h{suffix}", f"{prefix}c{suffix}"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fnbench"))
    tmp.chmod(0o755)
    (tmp / "flatnet.conf").write_text(
        f"[DEFAULT]\nnetworks_path = {tmp}/networks\n"
        f"[database]\nconnection = sqlite:///{tmp}/flatnet.sqlite\n"
    )
    try:
        setup_namespaces(host, cli)
        subprocess.run(
            [
                "ip", "netns", "exec", host, sys.executable, script,
                "--server", "--state", str(tmp), "--cli", cli, *argv,
            ],
            check=True,
        )  # fmt: skip
    finally:
        teardown_namespaces(host, cli)
        shutil.rmtree(tmp, ignore_errors=True)


def mac_of(n: int) -> str:
    return f"fa:16:3e:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"


def run_client(cli: str, mode: str, **kw: object) -> subprocess.Popen[str]:
    argv = [
        "ip",
        "netns",
        "exec",
        cli,
        sys.executable,
        __file__,
        "--client",
        mode,
        "--client-args",
        json.dumps(kw),
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def allocate(db: db_api.Database, net_id: int, first: int, count: int) -> None:
    for n in range(first, first + count):
        spec = db_api.InstanceSpec(hostname=f"h{n}", display_name=f"h{n}")
        db_api.instance_create_allocated(
            db,
            spec,
            [db_api.VifRequest(network_id=net_id, mac=netaddr.EUI(mac_of(n)))],
        )


def lease_all(db: db_api.Database, net_id: int) -> int:
    """Mark every host of the network leased (as after a day of
    uptime): dnsmasq's ``init`` hook then hands them all to dnsmasq."""
    events = [
        LeaseEvent("add", e.mac, e.address)
        for e in db_api.host_entries(db, net_id)
    ]
    db_api.apply_lease_events(db, "bench-preload", 1, len(events), events)
    return len(events)


def probe_gap(cli: str, seconds: float) -> dict[str, float]:
    probe = run_client(cli, "probe", mac=mac_of(0), seconds=seconds)
    return dict(json.loads(probe.communicate()[0]))


def storm(
    args: argparse.Namespace,
    db: db_api.Database,
    net_id: int,
    rec: dhcp.DhcpReconciler,
) -> None:
    """Figures 1 and 2: the allocation storm, probed from the client."""
    state = rec.state(net_id)
    assert state is not None
    base = (state.reloads, state.starts)
    idle = probe_gap(args.cli, 2.0)
    print(
        f"idle: existing client max DISCOVER->OFFER gap "
        f"{idle['max_gap_ms']:.1f} ms (no allocation running)"
    )
    probe = run_client(args.cli, "probe", mac=mac_of(0), seconds=args.probe)
    time.sleep(0.5)
    t0 = time.monotonic()
    allocate(db, net_id, args.hosts, args.new)
    committed = time.monotonic() - t0
    last = db_api.network_generations(db)[net_id]
    while db_api.host_state_get(db, "bench", net_id, "dhcp") < last:
        time.sleep(0.005)
    ready = time.monotonic() - t0
    gap = json.loads(probe.communicate()[0])
    print(
        f"storm: {args.new} allocations committed in {committed:.2f} s, "
        f"all DHCP-ready after {ready:.2f} s"
    )
    print(
        f"storm: dnsmasq reloads {state.reloads - base[0]}, restarts "
        f"{state.starts - base[1]} per {args.new} allocations"
    )
    print(
        f"storm: existing client max DISCOVER->OFFER gap "
        f"{gap['max_gap_ms']:.1f} ms ({gap['offers']}/{gap['sent']} "
        f"offers, one DISCOVER every 5 ms)"
    )


def handshakes(
    args: argparse.Namespace, db: db_api.Database, net_id: int
) -> None:
    """Figure 3: DORA rate, and until every ``add`` is in the database."""
    entries = sorted(db_api.host_entries(db, net_id), key=lambda e: e.address)
    leased = {str(x.address) for x in db_api.leases(db, net_id)}
    hosts = [
        (plan.mac_text(e.mac), str(e.address))
        for e in entries
        if str(e.address) not in leased
    ][: args.dora]
    before = len(leased)
    t0 = time.monotonic()
    dora = run_client(args.cli, "dora", hosts=hosts, window=args.window)
    result = json.loads(dora.communicate()[0])
    while len(db_api.leases(db, net_id)) < before + result["handshakes"]:
        if time.monotonic() - t0 > 300:
            break
        time.sleep(0.01)
    recorded = time.monotonic() - t0
    print(
        f"dora: {result['handshakes']} handshakes in "
        f"{result['seconds']:.2f} s = {result['per_second']:.0f}/s "
        f"(retries {result['retries']}, window {args.window}, client CPU "
        f"{result['client_cpu']:.2f} s)"
    )
    count = len(db_api.leases(db, net_id)) - before
    print(
        f"dora: {count} add events in the DB after {recorded:.2f} s = "
        f"{count / recorded:.0f}/s end to end"
    )


def server(args: argparse.Namespace) -> None:
    tmp = pathlib.Path(args.state)
    db = db_api.Database(f"sqlite:///{tmp}/flatnet.sqlite")
    db_api.sync(db)
    net = db_api.network_create(
        db, network_layout(SUBNET), label="bench", bridge=BRIDGE
    )
    t0 = time.monotonic()
    allocate(db, net.id, 0, args.hosts)
    print(
        f"preload: {args.hosts} hosts in DB in {time.monotonic() - t0:.1f} s"
    )
    if args.leased:
        print(f"preload: {lease_all(db, net.id)} of them leased")
    settings = plan.DhcpSettings(
        networks_path=str(tmp / "networks"),
        dhcpbridge=str(
            pathlib.Path(sys.executable).parent / "flatnet-dhcpbridge"
        ),
        dhcpbridge_flagfile=(str(tmp / "flatnet.conf"),),
        dhcp_hostsdir=not args.no_hostsdir,
        dnsmasq_config_file=args.dnsmasq_conf or "",
        dhcp_lease_hook=args.hook,
        # one dnsmasq, whatever the host count (shards: dhcp_shards.py)
        dhcp_shard_hosts=10**9,
    )
    rec = dhcp.DhcpReconciler(
        db, "bench", settings, DnsmasqProcess, release=DhcpRelease()
    )
    if args.batch:
        rec.tuning = dataclasses.replace(rec.tuning, hostsdir_batch=args.batch)
    loop = daemon.Daemon(db, "bench", [rec])
    rec.prepare()
    t0 = time.monotonic()
    loop.run_once()
    print(
        f"dnsmasq start with {args.hosts} hosts: "
        f"{time.monotonic() - t0:.2f} s (incl. init hook)"
    )
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        storm(args, db, net.id, rec)
        if args.dora:
            handshakes(args, db, net.id)
    finally:
        stop.set()
        thread.join()
        pid = rec._procs[net.id].pid()  # noqa: SLF001 - bench teardown
        if pid:
            os.kill(pid, 9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--dora", type=int, default=3000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--probe", type=float, default=8.0)
    parser.add_argument("--no-hostsdir", action="store_true")
    parser.add_argument(
        "--hook", default="sh", choices=["sh", "lua"], help="dhcp_lease_hook"
    )
    parser.add_argument(
        "--leased",
        action="store_true",
        help="every preloaded host holds a lease (steady state)",
    )
    parser.add_argument(
        "--batch", type=int, help="hosts per hostsdir file (default: tuning)"
    )
    parser.add_argument(
        "--dnsmasq-conf", help="extra dnsmasq --conf-file (e.g. no-ping)"
    )
    parser.add_argument("--log", help="flatnet debug log file")
    parser.add_argument("--client")
    parser.add_argument("--client-args")
    parser.add_argument("--server", action="store_true")
    parser.add_argument("--state")
    parser.add_argument("--cli")
    args = parser.parse_args()
    if args.client:
        kw = json.loads(args.client_args)
        if args.client == "probe":
            print(json.dumps(dhcp_client.probe("c0", **kw)))
        else:
            hosts = [tuple(x) for x in kw["hosts"]]
            result = dhcp_client.dora("c0", hosts, SERVER, kw["window"])
            print(json.dumps(result))
        return
    if args.server:
        if args.log:
            logging.basicConfig(filename=args.log, level=logging.DEBUG)
        server(args)
        return
    run_in_host(__file__, sys.argv[1:], "fnb")


if __name__ == "__main__":
    main()
