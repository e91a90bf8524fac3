"""The per-shard generation and the filtered read of a sharded network
(flatnet.db.shards.bump, flatnet.db.dhcp_delta.shard_read, issue 12):
each writer bumps exactly the shard whose hosts it changed, in the same
transaction, and a read of some shards returns exactly their part of
the full read."""

from __future__ import annotations

import datetime

import netaddr

from flatnet.db import api
from tests.db.conftest import make_instance, make_network


def _generations(db, network_id) -> dict[int, int]:
    return {s.index: s.generation for s in api.shard_list(db, network_id)}


def _owner(db, network_id) -> dict:
    return {e.address: e.shard for e in api.host_entries(db, network_id)}


def _sharded(db, count=7, limit=3):
    """``count`` hosts spread over ceil(count / limit) shards."""
    net = make_network(db)
    infos = [make_instance(db, f"vm{i}", net, mac=i) for i in range(count)]
    api.ensure_shards(db, net.id, limit)
    return net, infos


def test_spreading_bumps_the_shards_that_received_hosts(db) -> None:
    net, _infos = _sharded(db)
    assert _generations(db, net.id) == {0: 1, 1: 1, 2: 1}
    api.ensure_shards(db, net.id, 3)  # settled: no write, no bump
    assert _generations(db, net.id) == {0: 1, 1: 1, 2: 1}


def test_an_allocation_bumps_only_its_shard(db) -> None:
    net, _infos = _sharded(db)  # loads 3 / 2 / 2
    before = _generations(db, net.id)
    info = make_instance(db, "new", net, mac=100)
    shard = _owner(db, net.id)[info.address]
    assert shard == 1  # the least loaded, lowest index
    after = _generations(db, net.id)
    assert after == {**before, 1: before[1] + 1}


def test_a_deallocation_bumps_only_its_shard(db) -> None:
    net, infos = _sharded(db)
    owner = _owner(db, net.id)
    gone = next(i for i in infos if owner[i.address] == 2)
    before = _generations(db, net.id)
    api.lease_fixed_ip(db, gone.address, gone.vif.address)
    assert _generations(db, net.id) == before  # a lease event: no bump
    api.deallocate_for_instance(db, gone.instance.uuid)
    assert _generations(db, net.id) == {**before, 2: before[2] + 1}


def test_the_stale_cleanup_bumps_the_shard_of_each_address(db) -> None:
    net, infos = _sharded(db)
    owner = _owner(db, net.id)
    gone = next(i for i in infos if owner[i.address] == 1)
    api.lease_fixed_ip(db, gone.address, gone.vif.address)
    api.deallocate_for_instance(db, gone.instance.uuid)
    before = _generations(db, net.id)
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    assert api.disassociate_stale_fixed_ips(db, "h1", future) == 1
    assert _generations(db, net.id) == {**before, 1: before[1] + 1}


def test_a_full_read_equals_host_entries_and_leases(db) -> None:
    net, infos = _sharded(db)
    other = make_network(db, cidr="10.1.0.0/24", label="b", bridge="br101")
    # a second VIF of vm0 on another network, and vm1's first VIF is on
    # the other network: default_route must be computed as host_entries
    spec = api.InstanceSpec(hostname="two", display_name="two")
    two = api.instance_create_allocated(
        db,
        spec,
        [
            api.VifRequest(network_id=other.id, mac=_eui(200)),
            api.VifRequest(network_id=net.id, mac=_eui(201)),
        ],
    )
    for info in infos[:3]:
        api.lease_fixed_ip(db, info.address, info.vif.address)
    api.deallocate_for_instance(db, infos[0].instance.uuid)  # stale lease
    read = api.shard_read(db, net.id, None)
    entries = api.host_entries(db, net.id)
    assert sorted(read.generations) == [0, 1, 2]
    assert [e for k in sorted(read.entries) for e in read.entries[k]] == [
        e for k in (0, 1, 2) for e in entries if e.shard == k
    ]
    flat = [e for v in read.entries.values() for e in v]
    assert any(not e.default_route for e in flat)  # two's second VIF
    assert two[1].address in {e.address for e in flat}
    assert read.complete == {0, 1, 2}
    assert read.removed == {0: [], 1: [], 2: []}
    # leases of addresses that are not hosts: the one to release
    stale = [
        x for x in api.leases(db, net.id) if x.address == infos[0].address
    ]
    assert [x for v in read.leased.values() for x in v] == stale


def test_a_whole_read_of_some_shards_returns_exactly_their_part(db) -> None:
    net, infos = _sharded(db)
    for info in infos:
        api.lease_fixed_ip(db, info.address, info.vif.address)
    full = api.shard_read(db, net.id, None)
    part = api.shard_read(db, net.id, {1: None})
    assert part.generations == {1: full.generations[1]}
    assert part.complete == {1}
    assert part.entries == {1: full.entries[1]}
    assert api.shard_read(db, net.id, {}).entries == {}


def test_a_read_since_a_generation_returns_only_the_rows_changed(db) -> None:
    net, infos = _sharded(db)  # loads 3 / 2 / 2
    since = _generations(db, net.id)
    assert api.shard_read(db, net.id, since).entries == {0: [], 1: [], 2: []}
    new = make_instance(db, "new", net, mac=100)  # shard 1
    owner = _owner(db, net.id)
    gone = next(i for i in infos if owner[i.address] == 2)
    api.deallocate_for_instance(db, gone.instance.uuid)  # never leased
    read = api.shard_read(db, net.id, since)
    assert read.complete == frozenset()
    assert [e.address for e in read.entries[1]] == [new.address]
    assert read.entries[0] == read.entries[2] == []
    assert read.removed == {0: [], 1: [], 2: [gone.address]}
    assert read.generations == _generations(db, net.id)
    # a read at the new generations finds nothing more
    again = api.shard_read(db, net.id, read.generations)
    assert again.entries == {0: [], 1: [], 2: []}
    assert again.removed == {0: [], 1: [], 2: []}


def _eui(n: int) -> netaddr.EUI:
    return netaddr.EUI(0xFA163E000000 + n)
