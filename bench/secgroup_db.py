"""Security groups in the database: what a compute host's read costs.

    .venv/bin/python bench/secgroup_db.py [--instances 1000] [--members 1000]
        [--url sqlite:///...]   # default: a fresh SQLite file

A fresh database with one /16 network; ``--instances`` instances on
host ``h1`` in group ``web`` (a tcp/80 CIDR rule and a tcp/22 rule whose
source is ``app``), ``--members`` instances of ``app`` on host ``h2``.
Prints the median of :func:`flatnet.db.api.host_firewall` for h1 (the
reconciler's one read per change), and of one rule add and one member
joining ``app`` (each one write transaction with its ``firewall`` bump).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import netaddr

from flatnet import ipam
from flatnet.db import api

CIDR = "10.128.0.0/16"


def _median_ms(fn: Callable[[int], object], runs: int) -> float:
    times = []
    for n in range(runs):
        start = time.perf_counter()
        fn(n)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _populate(db: api.Database, instances: int, members: int) -> int:
    net = api.network_create(
        db, ipam.network_layout(CIDR), label="bench", bridge="br100"
    )
    api.secgroup_create(db, "web")
    api.secgroup_create(db, "app")
    api.secgroup_rule_add(db, "web", api.RuleSpec("tcp", "80"))
    api.secgroup_rule_add(db, "web", api.RuleSpec("tcp", "22", None, "app"))
    mac = 0xFA163E000000
    for n in range(instances + members):
        local = n < instances
        spec = api.InstanceSpec(
            hostname=f"vm{n}",
            display_name=f"vm{n}",
            host="h1" if local else "h2",
            security_groups=("web",) if local else ("app",),
        )
        req = api.VifRequest(net.id, netaddr.EUI(mac + n))
        api.instance_create_allocated(db, spec, [req])
    return net.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        db = api.Database(url)
        api.sync(db)
        start = time.perf_counter()
        _populate(db, args.instances, args.members)
        setup = time.perf_counter() - start
        read = _median_ms(lambda _: api.host_firewall(db, "h1"), args.runs)
        _, state = api.host_firewall(db, "h1")
        add = _median_ms(
            lambda n: api.secgroup_rule_add(
                db, "web", api.RuleSpec("udp", str(1000 + n))
            ),
            args.runs,
        )
        join = _median_ms(
            lambda n: api.instance_add_secgroup(db, f"vm{n}", "app"),
            args.runs,
        )
        db.dispose()
    print(f"database: {url.split(':', 1)[0]}")
    print(f"setup: {args.instances + args.members} instances in {setup:.1f} s")
    print(
        f"host_firewall(h1): {len(state.instances)} instances, "
        f"{len(state.members_of(state.groups[0].id))} members of "
        f"{state.groups[0].name}: median {read:.1f} ms"
    )
    print(f"secgroup_rule_add: median {add:.2f} ms")
    print(f"instance_add_secgroup: median {join:.2f} ms")


if __name__ == "__main__":
    main()
