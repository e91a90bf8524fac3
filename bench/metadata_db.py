"""flatnet-metadata through the database: lookup cost, crawls, a storm.

    .venv/bin/python bench/metadata_db.py [--instances 1000]

Builds a SQLite database in a temporary directory with one network
(127.1.0.0/20, on the loopback) and ``--instances`` instances created
as ``instance create --user-data --key-name --public-key`` does, then:

1. ``db.api.instance_metadata`` called in this process for every
   instance (the query the server runs on a cache miss): p50/p99/max;
   ``metadata_generation`` (polled every second): p50;
2. starts the real ``bin/flatnet-metadata`` on 127.0.0.1 and crawls as
   cloud-init does (28 requests, a new connection each) from 50
   instances' own addresses: cold (the first request of an instance
   runs the database lookup) and warm;
3. every instance crawls once, all at the same time (28 x instances
   requests, each instance's first one a database lookup): errors,
   wall time, crawl p99.

Crawl and storm clients come from bench/metadata.py. Goals (issue 10):
crawl < 50 ms; a 1,000-instance storm's 28,000 requests with zero
errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import netaddr

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import metadata as mb  # noqa: E402  (bench/metadata.py)

from flatnet import ipam  # noqa: E402
from flatnet.db import api  # noqa: E402
from flatnet.plan.boot_data import boot_data  # noqa: E402

KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGH1lPc2vl9t3BzIZm9YNEZ18iNecJ0"
    "Ei6zBm4rt83r4 bench@example"
)


def build(state: pathlib.Path, instances: int) -> list[str]:
    """The database; returns the instances' fixed addresses."""
    db = api.Database(f"sqlite:///{state}/flatnet.sqlite", create=True)
    api.sync(db)
    layout = ipam.network_layout("127.1.0.0/20", existing=[])
    net = api.network_create(
        db, layout, label="bench", bridge="br100",
        dns1=netaddr.IPAddress("127.0.0.53"),
    )  # fmt: skip
    boot = boot_data(b"#cloud-config\nruncmd: [true]\n", "bench", KEY)
    addresses = []
    for n in range(instances):
        spec = api.InstanceSpec(
            hostname=f"vm{n}", display_name=f"vm{n}", boot=boot
        )
        req = api.VifRequest(
            network_id=net.id, mac=netaddr.EUI(0xFA163E100000 + n)
        )
        info = api.instance_create_allocated(db, spec, [req])[0]
        addresses.append(str(info.address))
    lookups(db, addresses)
    db.dispose()
    return addresses


def lookups(db: api.Database, addresses: list[str]) -> None:
    took = []
    for ip in addresses:
        start = time.perf_counter()
        assert api.instance_metadata(db, ip) is not None
        took.append(time.perf_counter() - start)
    gens = []
    for _ in range(200):
        start = time.perf_counter()
        api.metadata_generation(db)
        gens.append(time.perf_counter() - start)
    print(
        f"instance_metadata (SQLite, {len(addresses)} instances): p50 "
        f"{statistics.median(took) * 1e3:.2f} ms p99 "
        f"{mb.pct(took, 0.99) * 1e3:.2f} ms max {max(took) * 1e3:.2f} ms; "
        f"metadata_generation p50 {statistics.median(gens) * 1e3:.2f} ms"
    )


def start(state: pathlib.Path) -> tuple[subprocess.Popen[str], int]:
    conf = state / "flatnet.conf"
    conf.write_text(
        f"[DEFAULT]\nstate_path = {state}\nmetadata_listen = 127.0.0.1\n"
        "metadata_listen_port = 0\n[metadata]\nmax_connections = 4096\n"
        "max_connections_per_ip = 64\n"
    )
    proc = subprocess.Popen(
        [str(ROOT / "bin" / "flatnet-metadata"), "--config-file", str(conf)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            # keep reading its log: a full pipe would stop the server
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(match[1])
    raise SystemExit("flatnet-metadata did not start")


async def crawls(port: int, addresses: list[str]) -> None:
    cold, warm = [], []
    for ip in addresses[:50]:
        took, errors = await mb.crawl(port, ip, True)
        assert errors == 0
        cold.append(took)
        took, errors = await mb.crawl(port, ip, True)
        assert errors == 0
        warm.append(took)
    print(
        "crawl (28 requests, new connection each, DB lookup on the "
        f"first): cold p50 {statistics.median(cold) * 1e3:.1f} ms max "
        f"{max(cold) * 1e3:.1f} ms; warm p50 "
        f"{statistics.median(warm) * 1e3:.1f} ms max {max(warm) * 1e3:.1f} ms"
    )


async def storm(port: int, addresses: list[str]) -> None:
    begin = time.perf_counter()
    results = await asyncio.gather(
        *(mb.crawl(port, ip, True) for ip in addresses)
    )
    wall = time.perf_counter() - begin
    errors = sum(r[1] for r in results)
    times = [r[0] for r in results]
    total = 28 * len(addresses)
    print(
        f"boot storm through the database: {len(addresses)} instances x 28 "
        f"= {total:,} requests in {wall:.2f} s ({total / wall:,.0f} req/s),"
        f" errors {errors}, crawl p99 {mb.pct(times, 0.99):.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="mdbench") as tmp:
        state = pathlib.Path(tmp)
        addresses = build(state, args.instances)
        proc, port = start(state)
        try:
            asyncio.run(crawls(port, addresses))
            # a fresh server: every instance's first request is a lookup
            proc.terminate()
            proc.wait(30)
            proc, port = start(state)
            asyncio.run(storm(port, addresses))
        finally:
            proc.terminate()
            proc.wait(30)
            if proc.stderr is not None:
                proc.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
