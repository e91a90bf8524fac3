"""Single dnsmasq vs shards, same runs (prints figures, asserts nothing;
root only).

    .venv/bin/python bench/dhcp_shards.py [--hosts 10000] [--new 1000]
        [--modes single,sharded] [--shard-hosts 600] [--max-shards 20]
        [--dora 5000]
        [--window 64] [--hook lua|sh] [--no-storm]

For each mode, a fresh "host" namespace with a bridge named per run
(10.240.0.0/16) and a "cli" namespace on the same segment, a SQLite
database with ``--hosts`` allocated instances, ALL leased, and the real
reconciler and daemon loop (real dnsmasq, journal ingest) in the host
namespace; ``single`` keeps one dnsmasq (dhcp_shard_hosts above the host
count, ``--hook``: its dhcp_lease_hook, default lua), ``sharded`` uses
``--shard-hosts`` (shards always journal with the Lua hook). Figures,
with the load average at the time:

1. ``--dora`` DHCP handshakes (raw socket, ``--window`` in flight, each
   REQUEST to its host's server) of hosts whose leases were first
   released in the database, with the daemon loop running: handshakes/s,
   and per second until every ``add`` is in the database (and when every
   one was in the journals), all from the client's first DISCOVER; a
   timeline (``j``: adds in the journals, ``db``: in the database) and
   the CPU each process class used meanwhile (``BENCH_PERF=<file>``:
   also a ``perf record -a -g`` of 3 s);
2. the longest window in which an existing client's DISCOVER (one every
   5 ms, raw socket) got no OFFER while ``--new`` allocations are
   committed one by one and served;
3. ``--new`` allocations to DHCP-ready (host_state "dhcp" reaches the
   last generation), per second from the daemon's resumption;
4. dnsmasq processes and their resident memory (VmRSS, servers and
   their script helpers), per 10,000 hosts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import subprocess
import sys
import threading
import time

import dhcp_client
import dhcp_storm
import proc_cpu
from dhcp_storm import (
    BRIDGE,
    SERVER,
    SUBNET,
    allocate,
    lease_all,
    mac_of,
    run_client,
)
from sqlalchemy import func, select

from flatnet.db import api as db_api
from flatnet.db.rows import FIXED
from flatnet.ipam import network_layout
from flatnet.linux.dhcp_release import DhcpRelease
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.model import LeaseEvent
from flatnet.plan import dnsmasq as plan
from flatnet.service import daemon, dhcp


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def _server_pids(rec: dhcp.DhcpReconciler, net_id: int) -> set[int]:
    pids = {s.proc.pid() for s in rec.sharded.shards_of(net_id)}
    pids.add(rec._procs[net_id].pid())  # noqa: SLF001 - bench
    for proc in rec.sharded.dns._procs.values():  # noqa: SLF001 - bench
        pids.add(proc.pid())
    return {p for p in pids if p}


def memory(
    rec: dhcp.DhcpReconciler, net_id: int, hosts: int, mode: str
) -> None:
    servers = _server_pids(rec, net_id)
    every = servers | proc_cpu.children(servers)
    rss = sum(proc_cpu.rss_kib(p) for p in every) / 1024
    per = 10000 / hosts
    print(
        f"{mode}: {len(servers)} dnsmasq + {len(every) - len(servers)} "
        f"helpers, RSS {rss:.1f} MiB at {hosts} hosts = "
        f"{len(every) * per:.1f} processes, {rss * per:.1f} MiB per 10,000 "
        f"hosts ({_load()})"
    )


def storm(
    args: argparse.Namespace,
    db: db_api.Database,
    net_id: int,
    loop: daemon.Daemon,
) -> None:
    """The ``--new`` allocations are committed first (the daemon loop
    paused, so the figure is DHCP's, not the commit rate), then the loop
    serves them while the prober runs."""
    idle = json.loads(
        run_client(
            args.cli, "probe", mac=mac_of(0), seconds=2.0
        ).communicate()[0]
    )
    print(f"{args.mode}: idle max gap {idle['max_gap_ms']:.1f} ms ({_load()})")
    t0 = time.monotonic()
    allocate(db, net_id, args.hosts, args.new)
    print(
        f"{args.mode}: {args.new} allocations committed in "
        f"{time.monotonic() - t0:.2f} s (daemon paused)"
    )
    probe = run_client(args.cli, "probe", mac=mac_of(0), seconds=args.probe)
    time.sleep(0.5)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    t0 = time.monotonic()
    thread.start()
    last = db_api.network_generations(db)[net_id]
    while db_api.host_state_get(db, "bench", net_id, "dhcp") < last:
        if time.monotonic() - t0 > 900:
            print(
                f"{args.mode}: NOT READY after {time.monotonic() - t0:.0f} s"
            )
            break
        time.sleep(0.005)
    ready = time.monotonic() - t0
    gap = json.loads(probe.communicate()[0])
    stop.set()
    thread.join()
    print(
        f"{args.mode}: {args.new} allocations DHCP-ready {ready:.2f} s after "
        f"the daemon resumed = {args.new / ready:.0f}/s ({_load()})"
    )
    print(
        f"{args.mode}: existing client longest no-answer window "
        f"{gap['max_gap_ms']:.1f} ms ({gap['offers']}/{gap['sent']} offers; "
        f"probe {args.probe:.0f} s) ({_load()})"
    )


def handshakes(
    args: argparse.Namespace,
    db: db_api.Database,
    net_id: int,
    loop: daemon.Daemon,
) -> None:
    """``--dora`` handshakes (raw socket, ``--window`` in flight, each
    REQUEST to its host's server: its shard's address), with the daemon
    loop running; their hosts' leases are first released in the database
    (as if expired), so "every event in the database" is every target
    leased again, measured from the first DISCOVER."""
    servers = {s.index: str(s.address) for s in db_api.shard_list(db, net_id)}
    entries = db_api.host_entries(db, net_id)[1 : args.dora + 1]  # 0 probes
    forget = [LeaseEvent("del", e.mac, e.address) for e in entries]
    db_api.apply_lease_events(db, "bench-forget", 1, len(forget), forget)
    hosts = [
        (plan.mac_text(e.mac), str(e.address), servers.get(e.shard, SERVER))
        for e in entries
    ]
    networks = pathlib.Path(args.state) / "networks"
    counter = proc_cpu.AddCounter(networks)
    base = _leased(db, net_id)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    classes = proc_cpu.classes(_server_pids(rec_of(loop), net_id), thread)
    cpu0 = proc_cpu.snapshot(classes)
    perf = proc_cpu.perf_record(os.environ.get("BENCH_PERF"), 3.0)
    dora = _client(args.cli, "dora")
    assert dora.stdin is not None
    dora.stdin.write(json.dumps({"hosts": hosts, "window": args.window}))
    dora.stdin.close()
    samples: list[tuple[float, int, int]] = []
    while True:  # a COUNT and the journals' size every 20 ms: cheap
        now = time.monotonic()
        samples.append((now, counter.more(), _leased(db, net_id) - base))
        if samples[-1][2] >= len(entries) or now - samples[0][0] > 300:
            break
        time.sleep(0.02)
    cpu1 = proc_cpu.snapshot(classes)
    if perf is not None:
        perf.wait()
    stop.set()
    thread.join()
    assert dora.stdout is not None
    result = json.loads(dora.stdout.read())
    dora.wait()
    _print_handshakes(args, result, samples, len(entries))
    print(
        f"{args.mode}: "
        + proc_cpu.report(cpu0, cpu1)
        + f"; client {result['client_cpu']:.2f} s ({_load()})"
    )


def rec_of(loop: daemon.Daemon) -> dhcp.DhcpReconciler:
    rec = loop.reconcilers[0]
    assert isinstance(rec, dhcp.DhcpReconciler)
    return rec


def _print_handshakes(
    args: argparse.Namespace,
    result: dict[str, float],
    samples: list[tuple[float, int, int]],
    wanted: int,
) -> None:
    """Handshakes/s, then from the first DISCOVER (the client's own
    CLOCK_MONOTONIC start, not its spawn: its start-up is not DHCP):
    when every add was in the journals, in the database, and a timeline."""
    t0 = result["start"]
    done = t0 + result["seconds"]
    journalled = next((t for t, j, _ in samples if j >= wanted), None)
    recorded = samples[-1][0] - t0
    count = samples[-1][2]
    print(
        f"{args.mode}: {result['handshakes']} handshakes in "
        f"{result['seconds']:.2f} s = {result['per_second']:.0f}/s "
        f"(retries {result['retries']}, window {args.window}) ({_load()})"
    )
    print(
        f"{args.mode}: {count} of {wanted} add events in the DB "
        f"{recorded:.2f} s after the first DISCOVER = "
        f"{count / recorded:.0f}/s end to end; every add in the journals "
        f"after {(journalled or t0) - t0:.2f} s; client spawn to first "
        f"DISCOVER {t0 - samples[0][0]:.2f} s ({_load()})"
    )
    tail = proc_cpu.timeline(samples, t0)
    print(f"{args.mode}: timeline (handshakes done {done - t0:.2f} s): {tail}")


def _leased(db: db_api.Database, net_id: int) -> int:
    query = select(func.count()).where(
        FIXED.c.network_id == net_id, FIXED.c.leased.is_(True)
    )
    with db.read() as conn:
        return int(conn.execute(query).scalar_one())


def _client(cli: str, mode: str) -> subprocess.Popen[str]:
    """This file's client ``mode`` in the ``cli`` namespace; its
    arguments go to its stdin as JSON (10,000 hosts exceed ARG_MAX)."""
    argv = ["ip", "netns", "exec", cli, sys.executable, __file__]
    argv += ["--client", mode, "--client-args", "-"]
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _journal_bytes(networks: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in networks.glob("*.events"))


def settle(rec: dhcp.DhcpReconciler, networks: pathlib.Path) -> None:
    """Ingest the start's ``old`` events (one per lease, written by the
    hooks for seconds after the start) until the journals are quiet for
    2 s: the storm then measures DHCP, not the start's ingest backlog."""
    t0 = time.monotonic()
    size, quiet = -1, time.monotonic()
    while time.monotonic() - quiet < 2.0:
        rec.poll()
        now = _journal_bytes(networks)
        if now != size:
            size, quiet = now, time.monotonic()
        time.sleep(0.1)
    print(f"start's lease events ingested after {time.monotonic() - t0:.1f} s")


def server(args: argparse.Namespace) -> None:
    tmp = pathlib.Path(args.state)
    db = db_api.Database(f"sqlite:///{tmp}/flatnet.sqlite")
    db_api.sync(db)
    net = db_api.network_create(
        db, network_layout(SUBNET), label="bench", bridge=BRIDGE
    )
    t0 = time.monotonic()
    allocate(db, net.id, 0, args.hosts)
    lease_all(db, net.id)
    print(
        f"{args.mode}: preload {args.hosts} leased hosts in "
        f"{time.monotonic() - t0:.1f} s"
    )
    limit = args.shard_hosts if args.mode == "sharded" else 10**9
    settings = plan.DhcpSettings(
        networks_path=str(tmp / "networks"),
        dhcpbridge=str(
            pathlib.Path(sys.executable).parent / "flatnet-dhcpbridge"
        ),
        dhcpbridge_flagfile=(str(tmp / "flatnet.conf"),),
        dhcp_shard_hosts=limit,
        dhcp_max_shards=args.max_shards,
        dhcp_lease_hook=args.hook,
    )
    rec = dhcp.DhcpReconciler(
        db, "bench", settings, DnsmasqProcess, release=DhcpRelease()
    )
    loop = daemon.Daemon(db, "bench", [rec])
    rec.prepare()
    t0 = time.monotonic()
    loop.run_once()
    print(
        f"{args.mode}: start with {args.hosts} hosts "
        f"{time.monotonic() - t0:.2f} s"
        f", {len(db_api.shard_list(db, net.id))} shards, not live: "
        f"{loop.lagging() or 'none'} ({_load()})"
    )
    settle(rec, tmp / "networks")
    try:
        if args.dora:
            handshakes(args, db, net.id, loop)
            settle(rec, tmp / "networks")
        if args.storm:
            storm(args, db, net.id, loop)
        memory(rec, net.id, args.hosts + args.new, args.mode)
    finally:
        network = db_api.network_get(db, net.id)
        rec.sharded.remove(network, db_api.shard_list(db, net.id))
        for pid in _server_pids(rec, net.id):
            os.kill(pid, 9)
        rec.close()


def run_mode(mode: str, argv: list[str]) -> None:
    dhcp_storm.run_in_host(__file__, ["--mode", mode, *argv], "fns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--probe", type=float, default=10.0)
    parser.add_argument("--shard-hosts", type=int, default=600)
    parser.add_argument(
        "--max-shards", type=int, default=20, help="dhcp_max_shards"
    )
    parser.add_argument("--modes", default="single,sharded")
    parser.add_argument("--dora", type=int, default=5000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument(
        "--storm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--no-storm: handshakes only (no --new allocations)",
    )
    parser.add_argument(
        "--hook",
        default="lua",
        choices=["sh", "lua"],
        help="dhcp_lease_hook of the single dnsmasq (shards: always Lua)",
    )
    parser.add_argument("--mode")
    parser.add_argument("--log", help="flatnet debug log file")
    parser.add_argument("--server", action="store_true")
    parser.add_argument("--state")
    parser.add_argument("--cli")
    parser.add_argument("--client")
    parser.add_argument("--client-args")
    args = parser.parse_args()
    if args.client:  # the raw-socket prober, in the cli namespace
        raw = args.client_args
        kw = json.loads(sys.stdin.read() if raw == "-" else raw)
        if args.client == "dora":
            hosts = kw["hosts"]
            result = dhcp_client.dora("c0", hosts, SERVER, kw["window"])
            print(json.dumps(result))
        else:
            print(json.dumps(dhcp_client.probe("c0", **kw)))
        return
    if args.server:
        if args.log:
            logging.basicConfig(
                filename=args.log,
                level=logging.DEBUG,
                format="%(asctime)s %(threadName)s %(name)s %(message)s",
            )
        server(args)
        return
    rest = sys.argv[1:]
    forward = [
        a
        for i, a in enumerate(rest)
        if not a.startswith("--modes") and (i == 0 or rest[i - 1] != "--modes")
    ]
    for mode in args.modes.split(","):
        run_mode(mode, forward)


if __name__ == "__main__":
    main()
