"""db/lease_batch.py: a poll's events applied in one pass give exactly
the rows that applying them one by one (db.leases.lease/release, nova's
lease_fixed_ip/release_fixed_ip) gives, on real SQLite."""

from __future__ import annotations

import random

import netaddr
import pytest
from sqlalchemy import select

from flatnet.db import api as db_api
from flatnet.db.rows import FIXED, INSTANCES
from flatnet.model import LeaseEvent
from tests.fakes_dnsmasq import new_db, new_instance, new_network

MACS = [f"fa:16:3e:00:00:{n:02x}" for n in range(1, 9)]
STRANGER = "fa:16:3e:99:99:99"


def _world(tmp_path, name: str) -> db_api.Database:
    """7 instances, 2 deallocated (still associated), the MAC of the
    first reused by an 8th (the owner check of a release)."""
    path = tmp_path / name
    path.mkdir()
    db = new_db(path)
    network = new_network(db)
    for n, mac in enumerate(MACS[:7]):
        new_instance(db, network, f"vm{n}", mac)
    for entry in db_api.host_entries(db, network.id):
        db_api.lease_fixed_ip(db, entry.address, entry.mac)
    for n in range(2):
        db_api.deallocate_for_instance(
            db, db_api.instance_get(db, f"vm{n}").uuid
        )
    new_instance(db, network, "vm7", MACS[0])  # MAC reused
    return db


def _state(db: db_api.Database) -> list[tuple[object, ...]]:
    with db.read() as conn:
        found = conn.execute(
            select(
                FIXED.c.address,
                INSTANCES.c.hostname,
                FIXED.c.virtual_interface_id,
                FIXED.c.leased,
            )
            .outerjoin(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
            .order_by(FIXED.c.id)
        ).all()
    return [tuple(r) for r in found]


def _events(db: db_api.Database, seed: int) -> list[LeaseEvent]:
    rng = random.Random(seed)
    used = [str(e.address) for e in db_api.host_entries(db, 1)]
    with db.read() as conn:
        associated = [
            r.address
            for r in conn.execute(
                select(FIXED.c.address).where(
                    FIXED.c.instance_uuid.is_not(None)
                )
            )
        ]
    addresses = sorted(set(used + associated)) + ["10.210.0.200"]
    events = []
    for _ in range(300):
        mac = rng.choice([*MACS, STRANGER, None])
        events.append(
            LeaseEvent(
                rng.choice(["add", "old", "del", "del"]),
                None if mac is None else netaddr.EUI(mac),
                netaddr.IPAddress(rng.choice(addresses)),
            )
        )
    return events


@pytest.mark.parametrize("seed", range(6))
def test_batch_equals_one_by_one(tmp_path, seed):
    one = _world(tmp_path, "one")
    batch = _world(tmp_path, "batch")
    initial = _state(one)
    assert initial == _state(batch)
    events = _events(one, seed)
    for event in events:
        if event.action == "del":
            db_api.release_fixed_ip(one, event.address, event.mac)
        else:
            db_api.lease_fixed_ip(one, event.address, event.mac)
    db_api.apply_lease_events(batch, "j", 1, 1, events)
    assert _state(batch) == _state(one)
    assert _state(one) != initial  # the events did change something
