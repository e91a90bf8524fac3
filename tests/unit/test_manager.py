"""FlatDHCPManager on an in-memory SQLite database."""

from __future__ import annotations

import random

import netaddr
import pytest

from flatnet import exception
from flatnet.db import api
from flatnet.service import manager


class ScriptedRandom:
    """getrandbits() returns the scripted values, then random ones."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)
        self.fallback = random.Random(0)

    def getrandbits(self, k: int) -> int:
        return (
            self.values.pop(0) if self.values else self.fallback.getrandbits(k)
        )


@pytest.fixture
def db():
    database = api.Database("sqlite://")
    api.sync(database)
    yield database
    database.dispose()


def _mgr(db, *values: int, attempts: int = 5) -> manager.FlatDHCPManager:
    settings = manager.ManagerSettings(
        flat_network_bridge="br100",
        create_unique_mac_address_attempts=attempts,
    )
    return manager.FlatDHCPManager(db, settings, rng=ScriptedRandom(*values))


def _net(mgr, cidr="10.0.0.0/24", label="private", bridge=None):
    return mgr.create_network(
        manager.NetworkRequest(label=label, cidr=cidr, bridge=bridge)
    )


def test_create_network_applies_nova_defaults(db) -> None:
    net = _net(_mgr(db))
    assert (net.bridge, net.dns1) == ("br100", netaddr.IPAddress("8.8.4.4"))
    assert net.multi_host is False


def test_missing_bridge_is_bad_input(db) -> None:
    mgr = manager.FlatDHCPManager(db)
    with pytest.raises(exception.InvalidInput, match="bridge"):
        _net(mgr)


def test_mac_collision_is_retried_with_a_new_mac(db) -> None:
    mgr = _mgr(db, 1, 1, 2)
    _net(mgr)
    [first] = mgr.allocate_for_instance("vm1")
    [second] = mgr.allocate_for_instance("vm2")
    assert str(first.vif.address) == "FA-16-3E-00-00-01"
    assert str(second.vif.address) == "FA-16-3E-00-00-02"


def test_mac_attempts_are_bounded(db) -> None:
    mgr = _mgr(db, 1, 1, 1, 1, attempts=3)
    _net(mgr)
    mgr.allocate_for_instance("vm1")
    with pytest.raises(exception.MacAddressGenerationFailed):
        mgr.allocate_for_instance("vm2")
    assert [i.hostname for i in api.instance_list(db)] == ["vm1"]


def test_requested_mac_gets_one_attempt(db) -> None:
    mgr = _mgr(db)
    _net(mgr)
    mgr.allocate_for_instance("vm1", mac_address="fa:16:3e:aa:bb:cc")
    with pytest.raises(exception.MacAddressInUse):
        mgr.allocate_for_instance("vm2", mac_address="fa:16:3e:aa:bb:cc")


def test_without_network_one_vif_per_network(db) -> None:
    mgr = _mgr(db)
    _net(mgr)
    _net(mgr, "10.1.0.0/24", "second", "br101")
    infos = mgr.allocate_for_instance("vm1")
    assert [(i.network.label, str(i.address)) for i in infos] == [
        ("private", "10.0.0.2"),
        ("second", "10.1.0.2"),
    ]
    with pytest.raises(exception.InvalidInput, match="--network"):
        mgr.allocate_for_instance("vm2", mac_address="fa:16:3e:00:00:09")
    [only] = mgr.allocate_for_instance("vm3", network="second")
    assert only.network.label == "second"


def test_no_network_at_all(db) -> None:
    with pytest.raises(exception.NetworkNotFound):
        _mgr(db).allocate_for_instance("vm1")


def test_deallocate_by_name(db) -> None:
    mgr = _mgr(db)
    _net(mgr)
    mgr.allocate_for_instance("vm1")
    [rel] = mgr.deallocate_for_instance("VM1")
    assert str(rel.address) == "10.0.0.2"


def test_wait_ready_returns_once_the_host_caught_up(db) -> None:
    mgr = _mgr(db)
    net = _net(mgr)
    infos = mgr.allocate_for_instance("vm1")
    with pytest.raises(exception.NotReady, match="ever reported"):
        manager.wait_ready(db, infos, "h1", 0.05, interval=0.01)
    api.host_state_set(
        db, "h1", net.id, "dhcp", infos[0].network.generation - 1
    )
    with pytest.raises(exception.NotReady, match="need"):
        manager.wait_ready(db, infos, "h1", 0.05, interval=0.01)
    api.host_state_set(db, "h1", net.id, "dhcp", infos[0].network.generation)
    manager.wait_ready(db, infos, "h1", 0.05, interval=0.01)


def test_cached_network_ident_follows_delete_and_recreate(db) -> None:
    mgr = _mgr(db)
    first = _net(mgr)
    [a] = mgr.allocate_for_instance("vm1", network="private")
    assert a.network.id == first.id
    mgr.deallocate_for_instance("vm1")
    api.network_delete(db, "private")
    second = _net(mgr, "10.7.0.0/24")
    [b] = mgr.allocate_for_instance("vm2", network="private")
    assert b.network.id == second.id
    assert str(b.address) == "10.7.0.2"


def test_wait_ready_names_the_error_the_host_recorded(db) -> None:
    mgr = _mgr(db)
    net = _net(mgr)
    infos = mgr.allocate_for_instance("vm1")
    api.host_state_record(
        db,
        "h1",
        "dhcp",
        errors={
            api.network_key(net.id): (
                "No space left on device: /var/lib/flatnet/networks/"
                "nova-br100.conf"
            )
        },
    )
    with pytest.raises(exception.NotReady) as info:
        manager.wait_ready(db, infos, "h1", 0.05, interval=0.01)
    assert str(info.value).endswith(
        f"host h1, network {net.id} ({net.bridge}): No space left on "
        "device: /var/lib/flatnet/networks/nova-br100.conf"
    )
