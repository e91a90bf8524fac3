"""Live migration between two hosts, end to end with real parts: two
real flatnet-network services on one SQLite database (tests/functional/
migration_site.py), real dnsmasq and busybox udhcpc, real iptables
chains filtering bridged frames, and a guest namespace whose NIC moves
from one host's bridge to the other's, driven through the hooks API in
nova's order (nova ``compute/manager.py``: ``pre_live_migration``,
``_post_live_migration``, ``post_live_migration_at_destination``,
``_rollback_live_migration``)."""

from __future__ import annotations

import os
import time

import pytest

from flatnet import exception
from flatnet.db import api
from flatnet.service.firewall_driver import FirewallDriver
from flatnet.service.manager import FlatDHCPManager
from flatnet.service.network_api import NetworkAPI
from tests import secgroup_rows as sg
from tests.functional.migration_site import (
    CIDR,
    PEER,
    Stream,
    TwoHosts,
    longest_gap,
    until,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]
MOVE = {"source_compute": "ha", "dest_compute": "hb"}
PORT = 5000


@pytest.fixture
def site(make_netns, world_readable_dir):
    made = TwoHosts(make_netns, world_readable_dir)
    made.manage("db", "sync")
    made.manage("network", "create", "--label", "private",
                "--fixed-range-v4", CIDR, "--bridge", "br100")  # fmt: skip
    db = api.Database(made.db_url)
    (net,) = api.network_list(db)
    api.network_set_host(db, net.id, "ha")  # ha serves its DHCP
    db.dispose()
    made.start("ha")
    made.start("hb")
    yield made
    made.close()


def _nova(db: api.Database, host: str) -> NetworkAPI:
    return NetworkAPI(FlatDHCPManager(db), host, interval=0.01, timeout=30)


def _driver(db: api.Database, host: str) -> FirewallDriver:
    return FirewallDriver(db, host, interval=0.01, timeout=30)


def _boot(site: TwoHosts, db: api.Database) -> tuple[dict, str, str]:
    """An instance on ha in a group that lets UDP PORT in (nothing
    else from the peer: allow_same_net_traffic is off), its guest
    bound by DHCP; returns (vif, uuid, guest namespace)."""
    group = sg.add_group(db, "mig")
    sg.add_rule(db, group, "udp", (PORT, PORT), cidr="0.0.0.0/0")
    (vif,) = _nova(db, "ha").allocate_for_instance("vm1")
    uuid = api.instance_get(db, "vm1").uuid
    sg.associate(db, group, uuid)
    _driver(db, "ha").refresh_instance_security_rules(uuid)
    guest = site.plug(vif["address"], "ha")
    bound = site.client(guest).bound()
    assert bound["ip"] == vif["network"]["subnets"][0]["ips"][0]["address"]
    return vif, uuid, guest


def test_live_migration_keeps_filters_dhcp_and_traffic(site) -> None:
    db = api.Database(site.db_url)
    vif, uuid, guest = _boot(site, db)
    address = vif["network"]["subnets"][0]["ips"][0]["address"]
    inst_id = api.instance_get(db, uuid).id
    assert not site.chain("hb", inst_id)
    site.listen(guest, 22)  # reachable but for the filters
    to_guest = Stream(site.switch, address, PORT, 0.001)
    from_guest = Stream(guest, PEER, PORT, 0.001)
    time.sleep(0.5)
    # pre_live_migration on the destination: filters before the guest
    start = time.monotonic()
    _nova(db, "hb").setup_networks_on_host(uuid, "hb")
    _driver(db, "hb").ensure_filtering_rules_for_instance(uuid)
    ready = time.monotonic() - start
    assert site.chain("hb", inst_id)
    assert site.chain("ha", inst_id)
    # the guest moves (libvirt migrateToURI3 would run here)
    site.attach(guest, "hb")
    moved_at = time.monotonic()
    move = site.switch_over(guest, "ha", "hb")
    # _post_live_migration on the source, then at the destination
    _nova(db, "ha").migrate_instance_start(uuid, MOVE)
    _driver(db, "ha").unfilter_instance(uuid)
    assert site.chain("ha", inst_id)  # kept until the finish
    _nova(db, "hb").setup_networks_on_host(uuid, "hb")
    _nova(db, "hb").migrate_instance_finish(uuid, MOVE)
    _driver(db, "ha").unfilter_instance(uuid)  # waits for ha's sync
    assert not site.chain("ha", inst_id)
    assert site.chain("hb", inst_id)
    time.sleep(1.0)
    end = time.monotonic()
    at_guest, at_peer = to_guest.stop(), from_guest.stop()
    gap_in = longest_gap(at_guest, moved_at - 0.5, end)
    gap_out = longest_gap(at_peer, moved_at - 0.5, end)
    load = os.getloadavg()[0]
    print(
        f"dest filters ready {ready * 1000:.0f} ms; NIC move "
        f"{move * 1000:.0f} ms; longest gap to the guest "
        f"{gap_in * 1000:.0f} ms, from it {gap_out * 1000:.0f} ms "
        f"(load {load:.2f})"
    )
    assert gap_in < 1.0
    assert gap_out < 1.0
    # the same MAC and address, DHCP still answers it (through hb)
    moved = _nova(db, "hb").get_instance_nw_info(uuid)
    assert moved[0]["address"] == vif["address"]
    assert moved[0]["network"]["subnets"][0]["ips"][0]["address"] == address
    client = site.clients[0]
    assert client.renew() == "renew"
    assert client.last({"renew"})["ip"] == address  # type: ignore[index]
    # hb filtered the stream (its chain counted it) and refuses the rest
    assert site.filtered("hb", inst_id) > 500  # 1 s at 1 ms
    assert not site.can_connect(site.switch, address, 22)


def test_rollback_and_kill_9_lose_nothing(site) -> None:
    db = api.Database(site.db_url)
    _vif, uuid, _guest = _boot(site, db)
    inst_id = api.instance_get(db, uuid).id
    # a migration rolled back: the destination drops, the source keeps
    _driver(db, "hb").ensure_filtering_rules_for_instance(uuid)
    assert site.chain("hb", inst_id)
    _nova(db, "ha").migration_rollback(uuid, MOVE)
    assert not site.chain("hb", inst_id)
    assert site.chain("ha", inst_id)
    assert api.instance_get(db, uuid).host == "ha"
    # kill -9 of the destination mid-migration: restarted, it filters
    site.kill("hb")
    with pytest.raises(exception.NotReady, match="host hb"):
        _nova(db, "ha").setup_networks_on_host(uuid, "hb", timeout=0.5)
    assert api.migration_get(db, uuid) == (uuid, "ha", "hb")  # recorded
    site.start("hb")
    _driver(db, "hb").ensure_filtering_rules_for_instance(uuid)
    assert site.chain("hb", inst_id)
    # kill -9 of the source before the finish: it drops the filter when
    # it is back, and nothing waited on it meanwhile
    site.kill("ha")
    _nova(db, "hb").migrate_instance_finish(uuid, MOVE)
    assert site.chain("ha", inst_id)  # nobody removed it yet
    site.start("ha")
    _driver(db, "ha").unfilter_instance(uuid)
    until(lambda: not site.chain("ha", inst_id))
    assert site.chain("hb", inst_id)
    assert api.instance_get(db, uuid).host == "hb"
    assert api.migration_get(db, uuid) is None
