"""Lease-journal ingest benchmark (prints figures, asserts nothing).

    .venv/bin/python bench/lease_ingest.py [--hosts 2000] [--events 30000]

A SQLite database (file, WAL as the daemon uses it) with ``--hosts``
allocated instances; a journal of ``--events`` records as the hooks
write them (``\\n<action> <mac> <ip>\\n``: add for every host, then
renewals ``old``, then some ``del``); the daemon's ingest
(``service.leases.ingest_journal``, one call per loop) run until the
journal is consumed. Prints events/s, the number of polls (one
transaction each) and the load average. ``--per-event`` applies the
events the way flatnet did before db/lease_batch.py (db.leases.lease /
release, two or three queries per event), for comparison.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

import netaddr

from flatnet.db import api as db_api
from flatnet.db import lease_batch
from flatnet.db import leases as db_leases
from flatnet.ipam import network_layout
from flatnet.service import leases


def mac_of(n: int) -> str:
    return f"fa:16:3e:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"


def build(
    path: str, hosts: int
) -> tuple[db_api.Database, list[tuple[str, str]]]:
    db = db_api.Database(f"sqlite:///{path}")
    db_api.sync(db)
    net = db_api.network_create(
        db, network_layout("10.200.0.0/16"), label="bench", bridge="br100"
    )
    for n in range(hosts):
        spec = db_api.InstanceSpec(hostname=f"h{n}", display_name=f"h{n}")
        request = db_api.VifRequest(
            network_id=net.id, mac=netaddr.EUI(mac_of(n))
        )
        db_api.instance_create_allocated(db, spec, [request])
    pairs = [(mac_of(n), "") for n in range(hosts)]
    found = {
        str(e.mac).lower().replace("-", ":"): str(e.address)
        for e in db_api.host_entries(db, net.id)
    }
    return db, [(mac, found[mac]) for mac, _ in pairs]


def journal_text(hosts: list[tuple[str, str]], events: int) -> str:
    rng = random.Random(7)
    lines = [f"\nadd {mac} {ip}\n" for mac, ip in hosts]
    while len(lines) < events:
        mac, ip = rng.choice(hosts)
        action = "del" if rng.random() < 0.05 else "old"
        lines.append(f"\n{action} {mac} {ip}\n")
    return "".join(lines[:events])


def per_event(conn, events) -> None:  # type: ignore[no-untyped-def]
    """The pre-batch path: one lease()/release() per event."""
    for event in events:
        if event.action == "del":
            db_leases.release(conn, event.address, event.mac)
        else:
            db_leases.lease(conn, event.address, event.mac)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--events", type=int, default=30000)
    parser.add_argument("--chunk", type=int, default=1 << 20)
    parser.add_argument("--per-event", action="store_true")
    args = parser.parse_args()
    if args.per_event:
        lease_batch.apply = per_event  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        db, hosts = build(os.path.join(tmp, "flatnet.sqlite"), args.hosts)
        print(
            f"{args.hosts} hosts built in {time.monotonic() - started:.1f} s"
        )
        path = os.path.join(tmp, "nova-br100.events")
        with open(path, "w") as handle:
            handle.write(journal_text(hosts, args.events))
        policy = leases.IngestPolicy(max_bytes=args.chunk)
        polls = 0
        started = time.monotonic()
        cpu = time.process_time()
        while leases.ingest_journal(db, path, policy) > 0:
            polls += 1
        took = time.monotonic() - started
        cpu = time.process_time() - cpu
        leased = len(db_api.leases(db, 1))
        print(
            f"ingest: {args.events} events in {took:.2f} s = "
            f"{args.events / took:,.0f} events/s, {polls} polls, "
            f"CPU {cpu / args.events * 1e6:.0f} us/event, {leased} leased "
            f"{'(per-event path) ' if args.per_event else ''}"
            f"at the end; load average {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
