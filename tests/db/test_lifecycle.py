"""The fixed-IP lifecycle of nova manager.deallocate_fixed_ip /
release_fixed_ip and nova test_manager's release matrix."""

from __future__ import annotations

import datetime

import netaddr
import pytest

from flatnet import exception, model
from flatnet.db import api
from tests.db.conftest import make_instance, make_network

IP = netaddr.IPAddress
MAC = netaddr.EUI


def _row(db, address: str) -> model.FixedIpView:
    [row] = [f for f in api.fixed_ip_list(db) if str(f.address) == address]
    return row


def _vif_mac(n: int) -> netaddr.EUI:
    return MAC(0xFA163E000000 + n)


@pytest.fixture
def net(db):
    return make_network(db)


def test_lease_then_deallocate_keeps_association_until_release(db, net):
    info = make_instance(db, "vm1", net, 1)
    api.lease_fixed_ip(db, info.address, _vif_mac(1))
    assert _row(db, "10.0.0.2").leased
    [rel] = api.deallocate_for_instance(db, info.instance.uuid)
    assert rel == model.FixedIpRelease(
        address=IP("10.0.0.2"),
        mac=_vif_mac(1),
        network_id=net.id,
        bridge="br100",
        leased=True,
    )
    row = _row(db, "10.0.0.2")
    assert not row.allocated
    assert row.leased
    assert row.instance_uuid == info.instance.uuid  # still associated
    assert api.host_entries(db, net.id) == []
    assert [lease.address for lease in api.leases(db, net.id)] == [
        IP("10.0.0.2")
    ]
    # a new instance does not get the address while it is leased
    assert make_instance(db, "vm2", net, 2).address == IP("10.0.0.3")
    api.release_fixed_ip(db, IP("10.0.0.2"), _vif_mac(1))
    row = _row(db, "10.0.0.2")
    assert row.instance_uuid is None
    assert not row.leased
    assert row.mac is None


def test_never_leased_is_disassociated_at_once(db, net):
    info = make_instance(db, "vm1", net, 1)
    [rel] = api.deallocate_for_instance(db, info.instance.uuid)
    assert rel.leased is False
    row = _row(db, "10.0.0.2")
    assert row.instance_uuid is None
    assert row.mac is None
    with pytest.raises(exception.InstanceNotFound):
        api.instance_get(db, "vm1")
    with pytest.raises(exception.InstanceNotFound):
        api.deallocate_for_instance(db, info.instance.uuid)


def test_deallocation_bumps_generation(db, net):
    info = make_instance(db, "vm1", net, 1)
    before = api.network_generations(db)[net.id]
    api.deallocate_for_instance(db, info.instance.uuid)
    assert api.network_generations(db)[net.id] == before + 1


def test_release_not_associated_does_nothing(db, net):
    api.release_fixed_ip(db, IP("10.0.0.9"), None)
    assert _row(db, "10.0.0.9").instance_uuid is None


def test_release_of_allocated_ip_only_clears_leased(db, net):
    info = make_instance(db, "vm1", net, 1)
    api.lease_fixed_ip(db, info.address, None)
    api.release_fixed_ip(db, info.address, _vif_mac(1))
    row = _row(db, "10.0.0.2")
    assert row.allocated
    assert not row.leased
    assert row.instance_uuid == info.instance.uuid


@pytest.mark.parametrize(
    ("mac", "disassociated"),
    [(1, True), (None, True), (77, True), ("other", False)],
    ids=["same-instance-mac", "no-mac", "unknown-mac", "mac-of-new-instance"],
)
def test_release_matrix(db, net, mac, disassociated):
    info = make_instance(db, "vm1", net, 1)
    api.lease_fixed_ip(db, info.address, _vif_mac(1))
    api.deallocate_for_instance(db, info.instance.uuid)
    if mac == "other":
        make_instance(db, "vm2", net, 5)
        mac_value = _vif_mac(5)
    else:
        mac_value = None if mac is None else _vif_mac(mac)
    api.release_fixed_ip(db, info.address, mac_value)
    row = _row(db, "10.0.0.2")
    assert not row.leased
    assert (row.instance_uuid is None) is disassociated


def test_lease_of_unassociated_ip_is_ignored(db, net):
    api.lease_fixed_ip(db, IP("10.0.0.9"), _vif_mac(3))
    assert not _row(db, "10.0.0.9").leased


def test_lease_with_a_foreign_mac_is_ignored(db, net):
    info = make_instance(db, "vm1", net, 1)
    api.lease_fixed_ip(db, info.address, _vif_mac(99))
    assert not _row(db, "10.0.0.2").leased


def test_apply_lease_events_records_offset_in_same_transaction(db, net):
    a = make_instance(db, "a", net, 1)
    b = make_instance(db, "b", net, 2)
    events = [
        model.LeaseEvent("add", _vif_mac(1), a.address, "a"),
        model.LeaseEvent("old", _vif_mac(2), b.address, "b"),
        model.LeaseEvent("del", _vif_mac(2), b.address, "b"),
        model.LeaseEvent("tftp", None, a.address),
    ]
    assert api.journal_offset(db, "/j") is None
    api.apply_lease_events(db, "/j", 42, 100, events)
    assert api.journal_offset(db, "/j") == (42, 100)
    assert _row(db, str(a.address)).leased
    assert not _row(db, str(b.address)).leased
    api.apply_lease_events(db, "/j", 42, 180, [])
    assert api.journal_offset(db, "/j") == (42, 180)


def test_stale_timeout_disassociates_and_clears_vif(db, net):
    info = make_instance(db, "vm1", net, 1, host="h1")
    api.lease_fixed_ip(db, info.address, _vif_mac(1))
    api.deallocate_for_instance(db, info.instance.uuid)
    past = datetime.datetime(2000, 1, 1)
    assert api.disassociate_stale_fixed_ips(db, "h1", past) == 0
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(1)
    assert api.disassociate_stale_fixed_ips(db, "h1", future) == 1
    row = _row(db, "10.0.0.2")
    assert row.instance_uuid is None
    assert not row.leased
    # nova bug (fixed_ip_disassociate_all_by_timeout): vif id cleared
    assert row.mac is None


def test_stale_host_filter_single_host_network(db, net):
    api.network_set_host(db, net.id, "bar")
    info = make_instance(db, "vm1", net, 1, host="foo")
    api.lease_fixed_ip(db, info.address, None)
    api.deallocate_for_instance(db, info.instance.uuid)
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(1)
    assert api.disassociate_stale_fixed_ips(db, "foo", future) == 0
    assert api.disassociate_stale_fixed_ips(db, "bar", future) == 1


def test_stale_host_filter_multi_host_network(db):
    net = make_network(db, multi_host=True)
    api.network_set_host(db, net.id, "bar")
    info = make_instance(db, "vm1", net, 1, host="foo")
    api.lease_fixed_ip(db, info.address, None)
    api.deallocate_for_instance(db, info.instance.uuid)
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(1)
    assert api.disassociate_stale_fixed_ips(db, "baz", future) == 0
    assert api.disassociate_stale_fixed_ips(db, "foo", future) == 1


def test_floating_ip_follows_instance_and_bumps_rules(db, net):
    info = make_instance(db, "vm1", net, 1, host="h1")
    assert (
        api.floating_create(
            db,
            [IP("203.0.113.5"), IP("203.0.113.6")],
            pool="nova",
            interface="eth0",
        )
        == 2
    )
    with pytest.raises(exception.FloatingIpAlreadyExists):
        api.floating_create(
            db, [IP("203.0.113.6")], pool="nova", interface=None
        )
    gen = api.rules_generation(db)
    fip = api.floating_associate(db, IP("203.0.113.5"), "vm1", "h1")
    assert fip.fixed_address == info.address
    assert api.rules_generation(db) == gen + 1
    assert [f.address for f in api.floating_for_host(db, "h1")] == [
        IP("203.0.113.5")
    ]
    with pytest.raises(exception.FloatingIpAssociated):
        api.floating_delete(db, [IP("203.0.113.5")])
    api.deallocate_for_instance(db, info.instance.uuid)
    assert api.floating_for_host(db, "h1") == []
    assert api.rules_generation(db) == gen + 2
    # idempotent: nothing to do, nothing bumped
    assert (
        api.floating_disassociate(db, IP("203.0.113.5")).fixed_address is None
    )
    assert api.rules_generation(db) == gen + 2
    assert api.floating_delete(db, [IP("203.0.113.5")]).deleted == [
        IP("203.0.113.5")
    ]
    assert [f.address for f in api.floating_list(db)] == [IP("203.0.113.6")]
