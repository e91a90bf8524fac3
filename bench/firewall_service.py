"""Benchmark: the compute firewall reconciler (database read + plan +
ipset + iptables apply), as flatnet-network runs it.

Runs itself inside a throwaway network namespace with a throwaway SQLite
database (N instances on this host, every one in group ``web``, one in
ten also in ``ops``; ``web`` admits ssh from ``ops`` members, a set):

* ``1,000 at once``: one sync making 1,000 instances live into an empty
  host (prepare + apply), split into the database read, the plan and
  the executors;
* ``restart, 100``: a new reconciler (fresh caches, as after a restart
  of the service) on a host whose rules are still live: its first sync
  reads the live tables and finds nothing to change (goal < 1 s);
* ``restart after flush, 100``: the same after ``iptables -F`` /
  ``ipset destroy`` of our objects (a reboot): every rule re-applied.

Needs root; touches nothing outside its namespace and its temp dir.

    .venv/bin/python -m bench.firewall_service [--quick]
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from flatnet.db import api
from flatnet.linux.conntrack import Conntrack
from flatnet.linux.ipset import IpsetBackend
from flatnet.linux.iptables_restore import RestoreBackend
from flatnet.plan import firewall as fw
from flatnet.plan.firewall_model import HostFirewall
from flatnet.service.firewall import FirewallReconciler, Reader
from tests import secgroup_rows as sg
from tests.db.conftest import make_instance, make_network


def populate(db: api.Database, count: int) -> None:
    net = make_network(db, "10.100.0.0/16", label="bench", bridge="brb")
    web, ops = sg.add_group(db, "web"), sg.add_group(db, "ops")
    sg.add_rule(db, web, "tcp", (80, 80), cidr="0.0.0.0/0")
    sg.add_rule(db, web, "tcp", (22, 22), source_group=ops)
    for n in range(count):
        info = make_instance(db, f"vm{n}", net, n + 1, host="bench")
        sg.associate(db, web, info.instance.uuid)
        if n % 10 == 0:
            sg.associate(db, ops, info.instance.uuid)


def reconciler(
    db: api.Database, reader: Reader | None = None
) -> FirewallReconciler:
    """The service's reconciler; ``reader`` None is its default (the
    incremental :class:`api.HostFirewallReader`)."""
    settings = fw.FirewallSettings()
    return FirewallReconciler(
        db, "bench", settings,
        ipsets=IpsetBackend(settings.prefix),
        iptables=RestoreBackend("iptables"),
        conntrack=Conntrack(),
        reader=reader,
    )  # fmt: skip


def timed_sync(
    rec: FirewallReconciler, verify: bool = False, with_poll: bool = False
) -> float:
    """One sync's seconds (the poll before it too when ``with_poll``)."""
    start = time.perf_counter()
    keys = rec.poll().generations
    rec._verify = verify  # noqa: SLF001 - as the periodic poll sets it
    if not with_poll:
        start = time.perf_counter()
    outcomes = rec.sync(keys)
    took = time.perf_counter() - start
    assert all(o.live for o in outcomes.values())  # noqa: S101
    return took


def flush() -> None:
    subprocess.run(["iptables", "-F"], check=True)
    subprocess.run(["iptables", "-X"], check=True)
    subprocess.run(["ipset", "destroy"], check=True)


def batch(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = api.Database(f"sqlite:///{tmp}/b.sqlite", create=True)
        api.sync(db)
        rec = reconciler(db)
        timed_sync(rec, verify=True)  # the service runs, host empty
        populate(db, count)  # N instances booted together
        # the sync that makes them live, with cold caches (nothing
        # parsed or rendered yet), then a breakdown from warm caches
        total = timed_sync(rec)
        start = time.perf_counter()
        _gen, state = api.host_firewall(db, "bench")
        read = time.perf_counter() - start
        plan = fw.firewall_plan(state, fw.FirewallSettings())
        planned = time.perf_counter() - start - read
        print(
            f"{count:>5} instances at once: {total * 1000:7.1f} ms "
            f"(then, warm: db read {read * 1000:.1f} ms, plan "
            f"{planned * 1000:.1f} ms; "
            f"{len(plan.ruleset.tables['filter'].chains)} chains)"
        )
        flush()
        db.dispose()


def restart(count: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = api.Database(f"sqlite:///{tmp}/r.sqlite", create=True)
        api.sync(db)
        populate(db, count)
        timed_sync(reconciler(db))
        warm, cold = [], []
        for _ in range(runs):
            warm.append(timed_sync(reconciler(db)))
            flush()
            cold.append(timed_sync(reconciler(db)))
        print(
            f"restart, {count} instances, rules still live: "
            f"{statistics.median(warm) * 1000:.1f} ms (median of {runs})"
        )
        print(
            f"restart after a flush, {count} instances re-applied: "
            f"{statistics.median(cold) * 1000:.1f} ms (median of {runs})"
        )
        flush()
        db.dispose()


class TimedFull:
    """The full read of every sync (before issue 9), timed."""

    def __init__(self) -> None:
        self.spent = 0.0

    def __call__(
        self, db: api.Database, host: str
    ) -> tuple[int, HostFirewall]:
        start = time.perf_counter()
        try:
            return api.host_firewall(db, host)
        finally:
            self.spent += time.perf_counter() - start


class TimedIncremental(api.HostFirewallReader):
    """The service's incremental reader, timed."""

    spent = 0.0

    def __call__(
        self, db: api.Database, host: str
    ) -> tuple[int, HostFirewall]:
        start = time.perf_counter()
        try:
            return super().__call__(db, host)
        finally:
            self.spent += time.perf_counter() - start


def plus_one(count: int, runs: int) -> None:
    """One instance created on a host of ``count``: the poll and sync
    that make it live (database read + plan + the delta commit), with
    the full read of every sync (before issue 9), then with the
    incremental read, on the same database one after the other."""
    with tempfile.TemporaryDirectory() as tmp:
        db = api.Database(f"sqlite:///{tmp}/p.sqlite", create=True)
        api.sync(db)
        populate(db, count)
        net = api.network_list(db)[0]
        readers: dict[str, tuple[TimedFull | TimedIncremental, bool]] = {
            "full read": (TimedFull(), False),
            "incremental read": (TimedIncremental(), False),
            "incremental read, gc.freeze() after each sync": (
                TimedIncremental(),
                True,
            ),
        }
        n = count
        for name, (read, freeze) in readers.items():
            rec = reconciler(db, read)
            timed_sync(rec, verify=True)  # reads the live tables
            took, reads = [], []
            for _ in range(runs):
                n += 1
                make_instance(db, f"new{n}", net, n, host="bench")
                read.spent = 0.0
                took.append(timed_sync(rec, with_poll=True))
                reads.append(read.spent)
                if freeze:  # as the daemon does after each round
                    gc.freeze()
            gc.unfreeze()
            print(
                f"+1 at {count} instances through the reconciler, {name}: "
                f"{statistics.median(took) * 1000:.1f} ms (poll + sync, "
                f"of which db read {statistics.median(reads) * 1000:.1f} "
                f"ms; median of {runs}; load {os.getloadavg()[0]:.2f})"
            )
        flush()
        db.dispose()


def inner(quick: bool) -> None:
    print(f"load average {os.getloadavg()}")
    restart(100, 3 if quick else 7)
    for count in (100,) if quick else (100, 1000):
        batch(count)
    for count in (1000,) if quick else (1000, 5000):
        plus_one(count, 3 if quick else 5)
    print(f"load average {os.getloadavg()}")


def main(argv: list[str]) -> int:
    if "--inner" in argv:
        inner("--quick" in argv)
        return 0
    ns = f"fntbenchfs{uuid.uuid4().hex[:4]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cmd = [sys.executable, "-m", "bench.firewall_service", "--inner",
               *argv]  # fmt: skip
        return subprocess.run(
            ["ip", "netns", "exec", ns, *cmd], check=False
        ).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
