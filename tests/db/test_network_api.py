"""The compute-driver network API on a real database, with a thread
playing flatnet-network's readiness reports (tests/host_service.py):
it returns only once DHCP and filters are reported live, fails with the
host's reason otherwise, and keeps nova's names and semantics."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import pytest

from flatnet import exception
from flatnet.db import api
from flatnet.service.manager import FlatDHCPManager
from flatnet.service.network_api import NetworkAPI
from tests.db.conftest import make_network
from tests.host_service import HostService


def _api(db: api.Database, host: str = "c1", **kw: float) -> NetworkAPI:
    kw.setdefault("timeout", 5.0)
    return NetworkAPI(FlatDHCPManager(db), host, interval=0.01, **kw)


def test_allocate_returns_once_dhcp_and_filters_are_live(db) -> None:
    net = make_network(db)
    with HostService(db, "c1") as service:
        infos = _api(db).allocate_for_instance("vm1")
        uuid = api.instance_get(db, "vm1").uuid
        fw = api.host_state(db, "c1", "firewall", api.instance_key(uuid))
        dhcp = api.host_state(db, "c1", "dhcp", api.network_key(net.id))
    assert service.passes > 0
    assert fw is not None
    assert fw.applied_generation >= 1
    assert dhcp is not None
    assert (
        dhcp.applied_generation >= api.network_get(db, str(net.id)).generation
    )
    (vif,) = infos
    assert vif["network"]["bridge"] == "br100"
    assert vif["network"]["subnets"][0]["ips"][0]["address"].startswith(
        "10.0.0."
    )
    assert vif["meta"]["nwfilter"].startswith("nova-instance-instance-")
    assert api.instance_get(db, "vm1").host == "c1"


def test_allocate_fails_with_the_hosts_reason(db) -> None:
    make_network(db)
    nova = _api(db, timeout=0.3)
    with pytest.raises(
        exception.NotReady, match="after 0.3 s.*has ever reported"
    ):
        nova.allocate_for_instance("vm1")  # no service at all
    service = HostService(db, "c1")
    service.error = "dnsmasq: No space left on device"
    service.run_once()
    with pytest.raises(exception.NotReady, match="No space left"):
        nova.allocate_for_instance("vm2")
    # without wait: written, not waited for
    (vif,) = nova.allocate_for_instance("vm3", wait=False)
    assert api.instance_get(db, "vm3").uuid


def test_allocate_waits_for_a_held_host(db) -> None:
    make_network(db)
    service = HostService(db, "c1")
    service.hold.set()
    release = threading.Timer(0.3, service.hold.clear)
    with service:
        release.start()
        infos = _api(db).allocate_for_instance("vm1", security_groups=())
    assert infos
    assert service.passes > 0


def test_nw_info_deallocate_and_interface_xml(db) -> None:
    make_network(db)
    nova = _api(db)
    with HostService(db, "c1"):
        infos = nova.allocate_for_instance("vm1", mac="fa:16:3e:00:00:09")
        assert nova.get_instance_nw_info("vm1") == infos
        uuid = api.instance_get(db, "vm1").uuid
        assert nova.get_instance_nw_info(uuid) == infos
        root = ET.fromstring(NetworkAPI.interface_xml(infos[0]))  # noqa: S314 (our own XML)
        assert root.find("mac").get("address") == "fa:16:3e:00:00:09"
        assert (
            root.find("filterref").get("filter")
            == (infos[0]["meta"]["nwfilter"])
        )
        nova.setup_networks_on_host(uuid, "c1")
        nova.deallocate_for_instance(uuid)
    with pytest.raises(exception.InstanceNotFound):
        nova.get_instance_nw_info(uuid)
    assert uuid not in api.host_instances(db, "c1")
    fixed = api.fixed_ip_list(db, api.FixedIpFilter(in_use_only=True))
    assert [f for f in fixed if f.allocated or f.instance_uuid] == []


def test_deallocate_waits_for_the_dhcp_host(db) -> None:
    make_network(db)
    nova = _api(db, timeout=0.3)
    service = HostService(db, "c1")
    with service:
        _api(db).allocate_for_instance("vm1")
    with pytest.raises(exception.NotReady, match="release of 10.0.0."):
        nova.deallocate_for_instance("vm1")  # nobody applies it


def test_migration_moves_the_instance_and_waits_for_the_destination(
    db,
) -> None:
    net = make_network(db)
    api.network_set_host(db, net.id, "net1")
    network = HostService(db, "net1", ("network",))
    source = HostService(db, "c1", ("compute",))
    dest = HostService(db, "c2", ("compute",))
    with network, source:
        infos = _api(db, "c1").allocate_for_instance("vm1")
        uuid = api.instance_get(db, "vm1").uuid
        nova = _api(db, "c2", timeout=0.3)
        # dest has the compute role but is not running
        dest.run_once()
        dest.hold.set()
        with pytest.raises(exception.NotReady, match="host c2"):
            nova.migrate_instance_start(
                uuid, {"source_compute": "c1", "dest_compute": "c2"}
            )
        dest.hold.clear()
        with dest:
            _api(db, "c2").migrate_instance_finish(
                uuid, {"source_compute": "c1", "dest_compute": "c2"}
            )
            key = api.instance_key(uuid)
            target = api.firewall_generation(db)
            state = api.host_state(db, "c2", "firewall", key)
            assert state is not None
            assert state.applied_generation >= target
    assert api.instance_get(db, uuid).host == "c2"
    assert api.host_instances(db, "c1") == []
    moved = nova.get_instance_nw_info(uuid)
    # MAC and fixed IP are kept
    assert moved[0]["address"] == infos[0]["address"]
    assert (
        moved[0]["network"]["subnets"][0]["ips"]
        == (infos[0]["network"]["subnets"][0]["ips"])
    )


def test_migration_needs_a_destination(db) -> None:
    make_network(db)
    nova = _api(db)
    with HostService(db, "c1"):
        nova.allocate_for_instance("vm1")
    with pytest.raises(exception.InvalidInput, match="dest_compute"):
        nova.migrate_instance_start("vm1", {"source_compute": "c1"})
    assert api.instance_get(db, "vm1").host == "c1"
