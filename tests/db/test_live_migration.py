"""Live migration through the compute-driver API on a real database,
with threads playing each host's flatnet-network (tests/host_service.py):
the destination filters the instance before the guest arrives, the
source keeps its filter until migrate_instance_finish, a rollback keeps
the source's, and a host that is down blocks nothing it need not."""

from __future__ import annotations

import time

import pytest

from flatnet import exception
from flatnet.db import api
from flatnet.service.firewall_driver import FirewallDriver
from flatnet.service.manager import FlatDHCPManager
from flatnet.service.network_api import NetworkAPI
from tests.db.conftest import make_network
from tests.host_service import HostService

MOVE = {"source_compute": "c1", "dest_compute": "c2"}


def _api(db: api.Database, host: str, timeout: float = 5.0) -> NetworkAPI:
    return NetworkAPI(
        FlatDHCPManager(db), host, interval=0.01, timeout=timeout
    )


def _filtered(db: api.Database, host: str) -> list[str]:
    """What the host's firewall reads: host_instances and host_firewall
    must agree."""
    uuids = api.host_instances(db, host)
    _gen, state = api.host_firewall(db, host)
    assert sorted(i.uuid for i in state.instances) == uuids
    return uuids


def _live(db: api.Database, host: str, uuid: str) -> bool:
    state = api.host_state(db, host, "firewall", api.instance_key(uuid))
    target = api.firewall_generation(db)
    return state is not None and state.applied_generation >= target


def _wait_live(db: api.Database, host: str, uuid: str) -> None:
    deadline = time.monotonic() + 10
    while not _live(db, host, uuid):
        assert time.monotonic() < deadline, f"{uuid} not live on {host}"
        time.sleep(0.01)


@pytest.fixture
def hosts(db):
    net = make_network(db)
    api.network_set_host(db, net.id, "net1")
    services = {
        "net1": HostService(db, "net1", ("network",)),
        "c1": HostService(db, "c1", ("compute",)),
        "c2": HostService(db, "c2", ("compute",)),
    }
    for service in services.values():
        service.start()
    yield services
    for service in services.values():
        service.stop()


def test_filters_on_both_hosts_until_finish(db, hosts) -> None:
    infos = _api(db, "c1").allocate_for_instance("vm1")
    uuid = api.instance_get(db, "vm1").uuid
    assert _filtered(db, "c2") == []
    # nova pre_live_migration on the destination
    dest = _api(db, "c2")
    dest.setup_networks_on_host(uuid, "c2")
    FirewallDriver(db, "c2", 0.01).ensure_filtering_rules_for_instance(uuid)
    assert _live(db, "c2", uuid)
    assert _filtered(db, "c1") == [uuid] == _filtered(db, "c2")
    assert api.migration_get(db, uuid) == (uuid, "c1", "c2")
    # the guest moved; nova _post_live_migration on the source
    _api(db, "c1").migrate_instance_start(uuid, MOVE)
    FirewallDriver(db, "c1", 0.01).unfilter_instance(uuid)
    assert _filtered(db, "c1") == [uuid]  # not before the finish
    assert api.instance_get(db, uuid).host == "c1"
    # post_live_migration_at_destination
    dest.setup_networks_on_host(uuid, "c2")
    dest.migrate_instance_finish(uuid, MOVE)
    assert _filtered(db, "c1") == []
    assert _filtered(db, "c2") == [uuid]
    assert api.instance_get(db, uuid).host == "c2"
    assert api.migration_get(db, uuid) is None
    # the source's teardown after it: nothing more changes
    _api(db, "c1").setup_networks_on_host(uuid, "c1", teardown=True)
    FirewallDriver(db, "c1", 0.01).unfilter_instance(uuid)
    assert _filtered(db, "c2") == [uuid]
    moved = dest.get_instance_nw_info(uuid)
    assert moved[0]["address"] == infos[0]["address"]
    ips = moved[0]["network"]["subnets"][0]["ips"]
    assert ips == infos[0]["network"]["subnets"][0]["ips"]


def test_rollback_keeps_the_source_filter(db, hosts) -> None:
    _api(db, "c1").allocate_for_instance("vm1")
    uuid = api.instance_get(db, "vm1").uuid
    dest = _api(db, "c2")
    dest.setup_networks_on_host(uuid, "c2")
    assert _filtered(db, "c2") == [uuid]
    # nova rollback_live_migration_at_destination: teardown + destroy
    dest.setup_networks_on_host(uuid, "c2", teardown=True)
    assert _filtered(db, "c2") == []
    assert _filtered(db, "c1") == [uuid]
    # the rollback bumped the generation: the source re-applies the
    # filter it kept (its own pass; nothing waits for the source)
    _wait_live(db, "c1", uuid)
    # the same through the driver's unfilter_instance on the destination
    FirewallDriver(db, "c2", 0.01).ensure_filtering_rules_for_instance(uuid)
    assert _filtered(db, "c2") == [uuid]
    FirewallDriver(db, "c2", 0.01).unfilter_instance(uuid)
    assert _filtered(db, "c2") == []
    state = api.host_state(db, "c2", "firewall", "host:c2")
    assert state is not None
    assert state.applied_generation >= api.firewall_generation(db)
    # and the one-call rollback
    _api(db, "c1").migrate_instance_start(uuid, MOVE)
    _api(db, "c1").migration_rollback(uuid, MOVE)
    assert _filtered(db, "c2") == []
    assert api.instance_get(db, uuid).host == "c1"
    assert _filtered(db, "c1") == [uuid]


def test_a_dead_source_blocks_nothing(db, hosts) -> None:
    _api(db, "c1").allocate_for_instance("vm1")
    uuid = api.instance_get(db, "vm1").uuid
    hosts["c1"].hold.set()  # source host down from here on
    dest = _api(db, "c2", timeout=2.0)
    dest.migrate_instance_start(uuid, MOVE)
    dest.migrate_instance_finish(uuid, MOVE)
    assert _live(db, "c2", uuid)
    assert _filtered(db, "c1") == []
    with pytest.raises(exception.NotReady, match="host c1"):
        FirewallDriver(db, "c1", 0.01, timeout=0.2).unfilter_instance(uuid)
    hosts["c1"].hold.clear()  # back: it drops the filter
    FirewallDriver(db, "c1", 0.01).unfilter_instance(uuid)


def test_a_dead_destination_is_named(db, hosts) -> None:
    _api(db, "c1").allocate_for_instance("vm1")
    uuid = api.instance_get(db, "vm1").uuid
    hosts["c2"].hold.set()
    with pytest.raises(exception.NotReady, match="host c2"):
        _api(db, "c1", timeout=0.3).migrate_instance_start(uuid, MOVE)
    # recorded all the same: the destination filters it once it is back
    assert _filtered(db, "c2") == [uuid]
    hosts["c2"].hold.clear()
    FirewallDriver(db, "c2", 0.01).ensure_filtering_rules_for_instance(uuid)


def test_deallocate_mid_migration_waits_for_both_hosts(db, hosts) -> None:
    nova = _api(db, "c1")
    nova.allocate_for_instance("vm1")
    uuid = api.instance_get(db, "vm1").uuid
    nova.setup_networks_on_host(uuid, "c2")
    hosts["c2"].hold.set()
    with pytest.raises(exception.NotReady, match="host c2"):
        _api(db, "c1", timeout=0.3).deallocate_for_instance(uuid)
    hosts["c2"].hold.clear()
    assert _filtered(db, "c1") == [] == _filtered(db, "c2")


def test_driver_refuses_an_instance_of_another_host(db, hosts) -> None:
    _api(db, "c1").allocate_for_instance("vm1")
    with pytest.raises(exception.InvalidInput, match="is on c1, not c3"):
        FirewallDriver(db, "c3", 0.01).prepare_instance_filter(
            api.instance_get(db, "vm1").uuid
        )
    with pytest.raises(exception.InvalidInput, match="host"):
        api.migration_begin(db, "vm1", "bad\nhost")
    assert api.migration_get(db, "vm1") is None
