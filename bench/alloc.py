"""Allocation benchmark (SQLite): flatnet's fixed-IP claims per second.

    .venv/bin/python bench/alloc.py [--sizes 1000 10000] [--procs 8]

For each size: a fresh SQLite database with one /16 network, then that
many instances allocated through FlatDHCPManager, first from one process,
then split over --procs processes started together. Also times
``network create`` of a /16 (65,536 fixed_ips rows).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

from flatnet import ipam
from flatnet.db import api
from flatnet.service import manager

CIDR = "10.128.0.0/16"


def _fresh(tmp: Path, name: str) -> tuple[str, float]:
    url = f"sqlite:///{tmp / name}.sqlite"
    db = api.Database(url)
    api.sync(db)
    start = time.perf_counter()
    api.network_create(
        db, ipam.network_layout(CIDR), label="bench", bridge="br100"
    )
    elapsed = time.perf_counter() - start
    db.dispose()
    return url, elapsed


def _worker(
    url: str, prefix: str, count: int, go: object
) -> tuple[float, float]:
    db = api.Database(url)
    mgr = manager.FlatDHCPManager(db)
    go.wait()  # type: ignore[attr-defined]
    start = time.perf_counter()
    for n in range(count):
        mgr.allocate_for_instance(f"{prefix}-{n}", network="bench")
    end = time.perf_counter()
    db.dispose()
    return start, end


def _parallel(url: str, total: int, procs: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as mp_manager, ctx.Pool(procs) as pool:
        go = mp_manager.Event()
        jobs = [
            pool.apply_async(_worker, (url, f"p{i}", total // procs, go))
            for i in range(procs)
        ]
        time.sleep(1.0)  # let every worker start and connect
        go.set()
        spans = [job.get(timeout=600) for job in jobs]
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return (total // procs) * procs / wall


def _serial(url: str, total: int) -> float:
    db = api.Database(url)
    mgr = manager.FlatDHCPManager(db)
    start = time.perf_counter()
    for n in range(total):
        mgr.allocate_for_instance(f"s-{n}", network="bench")
    elapsed = time.perf_counter() - start
    db.dispose()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--procs", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="flatnet-bench-"))
    try:
        for size in args.sizes:
            url, create = _fresh(tmp, f"serial{size}")
            print(f"network create {CIDR}: {create:.2f} s")
            rate = _serial(url, size)
            print(f"{size:>6} instances, 1 process:  {rate:8.0f} alloc/s")
            url, _ = _fresh(tmp, f"parallel{size}")
            rate = _parallel(url, size, args.procs)
            print(
                f"{size:>6} instances, {args.procs} processes: "
                f"{rate:8.0f} alloc/s"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
