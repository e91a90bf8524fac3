"""Allocation through flatnet.db.api (nova db api
fixed_ip_associate_pool), SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import netaddr
import pytest
from sqlalchemy import update

from flatnet import exception
from flatnet.db import api, rows
from tests.db.conftest import make_instance, make_network

IP = netaddr.IPAddress


def test_network_create_layout_and_rows(db) -> None:
    net = make_network(db)
    assert net.gateway == IP("10.0.0.1")
    assert net.dhcp_start == IP("10.0.0.2")
    assert net.generation == 1
    fixed = api.fixed_ip_list(db)
    assert len(fixed) == 256
    assert [str(f.address) for f in fixed if f.reserved] == [
        "10.0.0.0",
        "10.0.0.1",
        "10.0.0.255",
    ]
    assert api.network_get(db, "private") == api.network_get(db, str(net.id))
    assert api.network_get(db, net.uuid).id == net.id


def test_duplicates_and_overlaps_are_rejected(db) -> None:
    make_network(db)
    with pytest.raises(exception.CidrConflict):
        make_network(db, "10.0.0.0/16", label="b", bridge="br2")
    with pytest.raises(exception.DuplicateNetwork, match="label"):
        make_network(db, "10.1.0.0/24", label="private", bridge="br2")
    with pytest.raises(exception.DuplicateNetwork, match="bridge"):
        make_network(db, "10.1.0.0/24", label="b", bridge="br100")
    assert len(api.network_list(db)) == 1
    assert len(api.fixed_ip_list(db)) == 256


def test_allocation_bumps_generation_and_returns_it(db) -> None:
    net = make_network(db)
    info = make_instance(db, "vm1", net, 1)
    assert info.address == IP("10.0.0.2")
    assert info.network.generation == 2
    assert api.network_generations(db) == {net.id: 2}
    [entry] = api.host_entries(db, net.id)
    assert (entry.hostname, entry.address) == ("vm1", IP("10.0.0.2"))
    assert api.network_info(db, info.instance.uuid) == [info]


def test_oldest_updated_at_first_null_first_then_id(db) -> None:
    net = make_network(db, "10.0.0.0/29")  # .2 .. .6 allocatable
    old = datetime.datetime(2020, 1, 1)
    with db.write() as conn:  # .3 and .5 were used before, .5 longer ago
        for address, when in (
            ("10.0.0.3", old.replace(year=2021)),
            ("10.0.0.5", old),
        ):
            conn.execute(
                update(rows.FIXED)
                .where(rows.FIXED.c.address == address)
                .values(updated_at=when)
            )
    got = [str(make_instance(db, f"vm{i}", net, i).address) for i in range(5)]
    assert got == ["10.0.0.2", "10.0.0.4", "10.0.0.6", "10.0.0.5", "10.0.0.3"]
    with pytest.raises(exception.NoMoreFixedIps, match="private"):
        make_instance(db, "vm9", net, 9)


def test_released_addresses_go_to_the_back_of_the_queue(db) -> None:
    net = make_network(db, "10.0.0.0/29")
    first = make_instance(db, "a", net, 1)
    api.deallocate_for_instance(db, first.instance.uuid)
    got = [
        str(make_instance(db, f"b{i}", net, 10 + i).address) for i in range(5)
    ]
    assert got == ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.2"]


def test_requested_address(db) -> None:
    net = make_network(db)
    info = make_instance(db, "vm1", net, 1, address="10.0.0.77")
    assert info.address == IP("10.0.0.77")
    with pytest.raises(exception.FixedIpAlreadyInUse):
        make_instance(db, "vm2", net, 2, address="10.0.0.77")
    with pytest.raises(exception.FixedIpReserved):
        make_instance(db, "vm2", net, 2, address="10.0.0.1")
    with pytest.raises(exception.AddressOutOfRange):
        make_instance(db, "vm2", net, 2, address="10.9.0.1")
    assert [i.hostname for i in api.instance_list(db)] == ["vm1"]


def test_mac_collision_and_duplicate_name_write_nothing(db) -> None:
    net = make_network(db)
    make_instance(db, "vm1", net, 1)
    with pytest.raises(exception.MacAddressInUse) as err:
        make_instance(db, "vm2", net, 1)
    assert err.value.kwargs["mac"] == "fa:16:3e:00:00:01"
    with pytest.raises(exception.DuplicateInstance):
        make_instance(db, "vm1", net, 2)
    assert [i.hostname for i in api.instance_list(db)] == ["vm1"]
    assert sum(f.allocated for f in api.fixed_ip_list(db)) == 1
    assert api.network_generations(db)[net.id] == 2


def test_reserve_and_unreserve(db) -> None:
    net = make_network(db, "10.0.0.0/29")
    api.fixed_ip_set_reserved(db, IP("10.0.0.2"), True)
    assert make_instance(db, "a", net, 1).address == IP("10.0.0.3")
    with pytest.raises(exception.FixedIpAlreadyInUse):
        api.fixed_ip_set_reserved(db, IP("10.0.0.3"), True)
    with pytest.raises(exception.FixedIpNotFound):
        api.fixed_ip_set_reserved(db, IP("10.9.9.9"), True)
    api.fixed_ip_set_reserved(db, IP("10.0.0.2"), False)
    # unreserving touched updated_at: never-used addresses come first
    got = [
        make_instance(db, n, net, i).address
        for i, n in enumerate("bcde", start=2)
    ]
    assert got == [
        IP("10.0.0.4"),
        IP("10.0.0.5"),
        IP("10.0.0.6"),
        IP("10.0.0.2"),
    ]


def test_network_delete_refuses_while_in_use(db) -> None:
    net = make_network(db)
    info = make_instance(db, "vm1", net, 1)
    with pytest.raises(exception.NetworkInUse):
        api.network_delete(db, "private")
    api.deallocate_for_instance(db, info.instance.uuid)
    api.network_delete(db, "private")
    assert api.network_list(db) == []
    assert api.fixed_ip_list(db) == []
    make_network(db)  # label, bridge and cidr can be reused


def test_host_state_round_trip(db) -> None:
    net = make_network(db)
    assert api.host_state_get(db, "h1", net.id, "dhcp") == 0
    api.host_state_set(db, "h1", net.id, "dhcp", 5)
    api.host_state_set(db, "h1", net.id, "dhcp", 7)
    assert api.host_state_get(db, "h1", net.id, "dhcp") == 7
    assert api.host_state_get(db, "h2", net.id, "dhcp") == 0


def test_network_set_host_is_compare_and_set(db) -> None:
    net = make_network(db)
    assert api.network_set_host(db, net.id, "h1") == "h1"
    assert api.network_set_host(db, net.id, "h2") == "h1"


def test_slash16_network_create(db) -> None:
    net = make_network(db, "10.8.0.0/16")
    info = make_instance(db, "vm1", net, 1)
    assert info.address == IP("10.8.0.2")
    assert len(api.fixed_ip_list(db)) == 65536


def test_host_entries_filter_by_host_and_mark_first_vif(db) -> None:
    net1 = make_network(db)
    net2 = make_network(db, "10.1.0.0/24", label="second", bridge="br101")
    spec = api.InstanceSpec(hostname="multi", display_name="multi", host="h1")
    first, second = api.instance_create_allocated(
        db,
        spec,
        [
            api.VifRequest(
                network_id=net1.id,
                mac=netaddr.EUI(0xFA163E0000A1),
                address=None,
            ),
            api.VifRequest(
                network_id=net2.id,
                mac=netaddr.EUI(0xFA163E0000A2),
                address=None,
            ),
        ],
    )
    make_instance(db, "other", net1, 3, host="h2")
    [e1, other] = api.host_entries(db, net1.id)
    [e2] = api.host_entries(db, net2.id)
    # nova's default_route: only the instance's first VIF gets a router
    assert (e1.default_route, e2.default_route) == (True, False)
    assert other.default_route is True
    assert [e.hostname for e in api.host_entries(db, net1.id, "h1")] == [
        "multi"
    ]
    assert [e.hostname for e in api.host_entries(db, net1.id, "h2")] == [
        "other"
    ]
    assert first.vif.id == e1.vif_id
    assert second.vif.id == e2.vif_id
