"""Benchmark: the compute hooks API against a real flatnet-network.

    .venv/bin/python -m bench.hooks [--runs 200] [--storms 100 1000]
        [--sync-interval S] [--interval S] [--threads N]

In a throwaway network namespace (removed after) a real flatnet-network
with both roles (bridge, dnsmasq, host rules, instance chains) serves a
throwaway SQLite database; this process is the compute driver, calling
``NetworkAPI`` (built by ``flatnet.wiring.network_api``) as nova would:

* ``latency``: ``allocate_for_instance`` -> returns (DHCP host entry and
  the instance's filters live), one instance at a time on an otherwise
  idle host (each deallocated, waited for, before the next), ``--runs``
  times: p50, p90, p99, max (goal p99 <= 100 ms);
* ``storm N``: N allocations at once from ``--threads`` threads (100);
  instances per second until the last one is live.

Every figure is printed with the load average: taken while other work
runs on the machine, they are distorted. Needs root.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from flatnet import settings as flatnet_settings
from flatnet import wiring
from flatnet.db import api
from flatnet.db.rows import INSTANCES
from flatnet.service.network_api import NetworkAPI

BIN = pathlib.Path(sys.executable).parent
CIDR = "10.240.0.0/20"
DEBUG = ["--debug"] if os.environ.get("FLATNET_BENCH_DEBUG") else []


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()  # noqa: UP031


def run(*argv: str, ns: str | None = None) -> None:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    subprocess.run(full, check=True, capture_output=True, text=True)


@contextmanager
def host(sync_interval: float) -> Iterator[tuple[pathlib.Path, str]]:
    """A namespace running flatnet-network on a fresh database; yields
    (config file, namespace)."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fnbhooks"))
    tmp.chmod(0o755)
    ns = f"fnbhooks{os.getpid()}"
    conf = tmp / "flatnet.conf"
    conf.write_text(
        "[DEFAULT]\nhost = bench\nflatnet_roles = network,compute\n"
        f"state_path = {tmp}\nnetworks_path = {tmp}/networks\n"
        "flat_interface = fi0\n"
        f"dhcpbridge = {BIN / 'flatnet-dhcpbridge'}\n"
        f"dhcpbridge_flagfile = {conf}\n"
        f"sync_interval = {sync_interval}\niptables_backend = restore\n"
        f"[database]\nconnection = sqlite:///{tmp}/flatnet.sqlite\n"
    )
    run("ip", "netns", "add", ns)
    daemon = None
    try:
        run("ip", "link", "set", "lo", "up", ns=ns)
        run("ip", "link", "add", "fi0", "type", "veth", "peer", "name",
            "wire0", ns=ns)  # fmt: skip
        run("ip", "link", "set", "wire0", "up", ns=ns)
        manage = [str(BIN / "flatnet-manage")]
        run(*manage, "db", "sync", "--config-file", str(conf))
        run(*manage, "network", "create", "--config-file", str(conf),
            "--label", "bench", "--fixed-range-v4", CIDR,
            "--bridge", "br100")  # fmt: skip
        log = (tmp / "daemon.log").open("w")
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", ns, str(BIN / "flatnet-network"),
             "--config-file", str(conf), *DEBUG],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        yield conf, ns
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=30)
        out = subprocess.run(
            ["ip", "netns", "pids", ns],
            check=False, capture_output=True, text=True,
        ).stdout  # fmt: skip
        for pid in out.split():
            subprocess.run(["kill", "-9", pid], check=False)
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        if DEBUG:
            shutil.copy(tmp / "daemon.log", "/tmp/fnbhooks-daemon.log")
        shutil.rmtree(tmp, ignore_errors=True)


def nova(
    conf: pathlib.Path, interval: float | None, wake: bool = True
) -> NetworkAPI:
    found = flatnet_settings.load([str(conf)])
    made = wiring.network_api(found)
    if not wake:
        made.wake_path = None
    if interval is not None:
        made.interval = interval
    return made


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def breakdown(
    made: NetworkAPI, name: str, infos: list[Any]
) -> tuple[float, float]:
    """ms from the instance's commit (created_at) to the host's record
    of its DHCP entry and of its filter (host_state.updated_at)."""
    db, host = made.db, made.host
    inst = api.instance_get(db, name)
    with db.read() as conn:
        created = conn.execute(
            select(INSTANCES.c.created_at).where(INSTANCES.c.uuid == inst.uuid)
        ).scalar_one()
    net = api.network_key(infos[0]["meta"].get("network_id", 1))
    dhcp = api.host_state(db, host, "dhcp", net)
    fw = api.host_state(db, host, "firewall", api.instance_key(inst.uuid))
    out = []
    for state in (dhcp, fw):
        when = state.updated_at if state is not None else None
        out.append(
            (when - created).total_seconds() * 1000 if when else float("nan")
        )
    return out[0], out[1]


def latency(made: NetworkAPI, runs: int) -> None:
    made.allocate_for_instance("warm", timeout=60)  # dnsmasq up, chains
    made.deallocate_for_instance("warm", timeout=60)
    took, parts = [], []
    for n in range(runs):
        start = time.perf_counter()
        infos = made.allocate_for_instance(f"lat{n}", timeout=60)
        took.append(time.perf_counter() - start)
        parts.append(breakdown(made, f"lat{n}", infos))
        made.deallocate_for_instance(f"lat{n}", timeout=60)
    ms = [t * 1000 for t in took]
    for i, what in enumerate(("DHCP recorded", "filter recorded")):
        part = [p[i] for p in parts]
        print(
            f"  commit -> {what}: p50 {pct(part, 0.5):.1f} ms, "
            f"p99 {pct(part, 0.99):.1f} ms"
        )
    print(
        f"latency allocate->ready, {runs} runs: p50 {pct(ms, 0.5):.1f} ms, "
        f"p90 {pct(ms, 0.9):.1f} ms, p99 {pct(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms, mean {statistics.mean(ms):.1f} ms ({load()})",
        flush=True,
    )


def storm(made: NetworkAPI, count: int, threads: int, tag: str) -> None:
    """``count`` allocations at once, each waiting (nova's boot)."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [
            pool.submit(made.allocate_for_instance, f"{tag}{n}", timeout=600)
            for n in range(count)
        ]
        addresses = {
            f.result()[0]["network"]["subnets"][0]["ips"][0]["address"]
            for f in futures
        }
    took = time.perf_counter() - start
    assert len(addresses) == count  # noqa: S101
    print(
        f"storm {count} through the hooks API ({threads} threads): "
        f"{took:.2f} s, {count / took:.0f} instances/s ({load()})",
        flush=True,
    )


def storm_split(made: NetworkAPI, count: int, threads: int, tag: str) -> None:
    """The same, split: every allocation committed without waiting,
    then the wait until all are live (database vs host)."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(
            pool.map(
                lambda n: made.allocate_for_instance(f"{tag}{n}", wait=False),
                range(count),
            )
        )
    committed = time.perf_counter() - start
    for n in range(count):
        made.setup_networks_on_host(f"{tag}{n}", timeout=600)
    took = time.perf_counter() - start
    print(
        f"storm {count} split: committed in {committed:.2f} s "
        f"({count / committed:.0f}/s), all live after {took:.2f} s "
        f"({count / took:.0f} instances/s) ({load()})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--storms", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--sync-interval", type=float, default=0.1)
    parser.add_argument("--interval", type=float, default=None)
    parser.add_argument("--threads", type=int, default=100)
    parser.add_argument(
        "--no-wake", action="store_true", help="poll only (no wake socket)"
    )
    args = parser.parse_args()
    print(
        f"flatnet-network sync_interval {args.sync_interval} s, API poll "
        f"{args.interval or 'default'}, wake "
        f"{'off' if args.no_wake else 'on'} ({load()})",
        flush=True,
    )
    with host(args.sync_interval) as (conf, _ns):
        made = nova(conf, args.interval, wake=not args.no_wake)
        if args.runs:
            latency(made, args.runs)
        for count in args.storms:
            storm(made, count, args.threads, f"s{count}x")
            storm_split(made, count, args.threads, f"p{count}x")


if __name__ == "__main__":
    main()
