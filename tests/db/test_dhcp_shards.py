"""Stored DHCP shards: reserved addresses, least-loaded assignment at
allocation, never recomputed (flatnet.db.shards)."""

from __future__ import annotations

import collections

import pytest
from sqlalchemy import select

from flatnet import exception
from flatnet.db import api, models
from flatnet.db.shards import shards_needed
from tests.db.conftest import make_instance, make_network


def _hosts(db, network_id):
    return {e.address: e.shard for e in api.host_entries(db, network_id)}


def _fill(db, network, count, start=0):
    for i in range(start, start + count):
        make_instance(db, f"vm{i}", network, mac=i)


def test_small_network_has_no_shards_and_no_shard_on_hosts(db) -> None:
    net = make_network(db)
    _fill(db, net, 5)
    assert api.ensure_shards(db, net.id, 5) == []
    assert set(_hosts(db, net.id).values()) == {None}


def test_growing_past_the_limit_assigns_every_existing_host(db) -> None:
    net = make_network(db)
    _fill(db, net, 7)
    before = _hosts(db, net.id)
    generation = api.network_get(db, net.id).generation
    shards = api.ensure_shards(db, net.id, 3)
    assert [s.index for s in shards] == [0, 1, 2]  # ceil(7 / 3)
    after = _hosts(db, net.id)
    assert set(after) == set(before)  # no host lost its address
    assert collections.Counter(after.values()) == {0: 3, 1: 2, 2: 2}
    assert api.network_get(db, net.id).generation == generation + 1
    # the shard addresses are reserved: never handed to an instance
    with db.read() as conn:
        rows = conn.execute(
            select(models.FIXED).where(
                models.FIXED.c.address.in_([str(s.address) for s in shards])
            )
        ).all()
    assert all(r.reserved and r.instance_uuid is None for r in rows)
    assert not {s.address for s in shards} & set(after)


def test_allocation_takes_the_least_loaded_shard(db) -> None:
    net = make_network(db)
    _fill(db, net, 4)
    api.ensure_shards(db, net.id, 3)  # 2 shards: 2 + 2
    _fill(db, net, 3, start=4)
    loads = collections.Counter(_hosts(db, net.id).values())
    assert loads == {0: 4, 1: 3}


def test_adding_a_shard_moves_no_existing_host(db) -> None:
    net = make_network(db)
    _fill(db, net, 4)
    api.ensure_shards(db, net.id, 3)
    before = _hosts(db, net.id)
    _fill(db, net, 3, start=4)  # 7 hosts > 2 x 3: a third shard
    shards = api.ensure_shards(db, net.id, 3)
    assert len(shards) == 3
    after = _hosts(db, net.id)
    assert {a: after[a] for a in before} == before
    make_instance(db, "new", net, mac=99)
    newest = max(_hosts(db, net.id).items(), key=lambda kv: kv[0])
    assert _hosts(db, net.id)[newest[0]] is not None
    loads = collections.Counter(_hosts(db, net.id).values())
    assert loads[2] == 1  # the new host went to the empty shard


def test_ensure_is_idempotent_and_never_shrinks(db) -> None:
    net = make_network(db)
    _fill(db, net, 7)
    first = api.ensure_shards(db, net.id, 3)
    generation = api.network_get(db, net.id).generation
    assert api.ensure_shards(db, net.id, 3) == first
    assert api.ensure_shards(db, net.id, 100) == first  # never shrinks
    assert api.network_get(db, net.id).generation == generation


def test_deallocated_address_keeps_its_shard_until_reclaimed(db) -> None:
    net = make_network(db)
    _fill(db, net, 7)
    api.ensure_shards(db, net.id, 3)
    info = make_instance(db, "gone", net, mac=50)
    api.lease_fixed_ip(db, info.address, info.vif.address)
    shard = _hosts(db, net.id)[info.address]
    api.deallocate_for_instance(db, info.instance.uuid)
    leased = {x.address: x.shard for x in api.leases(db, net.id)}
    assert leased[info.address] == shard  # released by its own shard


def test_not_enough_addresses_for_a_shard(db) -> None:
    net = make_network(db, cidr="10.0.0.0/29")  # 8 addresses
    _fill(db, net, 3)
    with pytest.raises(exception.NoMoreFixedIps):
        api.ensure_shards(db, net.id, 1)
    assert api.shard_list(db, net.id) == []  # nothing half-done


def test_shards_needed() -> None:
    assert shards_needed(600, 0, 600) == 0
    assert shards_needed(601, 0, 600) == 2
    assert shards_needed(10_000, 0, 600) == 17
    assert shards_needed(10, 4, 600) == 4
    # at most dhcp_max_shards (default 20): then the shards grow
    assert shards_needed(50_000, 0, 625) == 20
    assert shards_needed(50_000, 0, 625, max_shards=80) == 80
    assert shards_needed(50_000, 30, 625) == 30  # never fewer than it has
    with pytest.raises(exception.InvalidInput):
        shards_needed(1, 0, 0)
    with pytest.raises(exception.InvalidInput):
        shards_needed(1, 0, 1, max_shards=0)


def test_past_max_shards_the_shards_grow(db) -> None:
    """dhcp_max_shards: a network of 9 hosts with 2 per shard and at
    most 3 shards has 3 shards of 3, and is settled (no write)."""
    net = make_network(db)
    _fill(db, net, 9)
    shards = api.ensure_shards(db, net.id, 2, 3)
    assert len(shards) == 3
    loads = collections.Counter(_hosts(db, net.id).values())
    assert loads == {0: 3, 1: 3, 2: 3}
    generation = api.network_get(db, net.id).generation
    assert api.ensure_shards(db, net.id, 2, 3) == shards
    assert api.network_get(db, net.id).generation == generation


def test_counters_are_recounted_after_deallocations(db) -> None:
    net = make_network(db)
    _fill(db, net, 4)
    api.ensure_shards(db, net.id, 3)  # 2 + 2
    gone = [e for e in api.host_entries(db, net.id) if e.shard == 0]
    for entry in gone:
        info = [
            i for i in api.instance_list(db) if i.hostname == entry.hostname
        ][0]
        api.deallocate_for_instance(db, info.uuid)
    api.ensure_shards(db, net.id, 3)  # shard 0 now holds 0 hosts
    make_instance(db, "fresh", net, mac=77)
    loads = collections.Counter(_hosts(db, net.id).values())
    assert loads == {1: 2, 0: 1}  # the emptied shard got it
