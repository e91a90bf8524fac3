"""nova's firewall-driver API over the database: it waits for the
host's report, and ``wait_ready`` waits for the instance's filter on a
compute-role host; the roles option and the wiring it drives."""

from __future__ import annotations

import threading

import pytest

from flatnet import exception, settings
from flatnet.db import api
from flatnet.service import manager
from flatnet.service.firewall import host_key
from flatnet.service.firewall_driver import FirewallDriver
from tests import secgroup_rows as sg
from tests.db.conftest import make_instance, make_network
from tests.unit.test_firewall_reconciler import Site


@pytest.fixture
def db(tmp_path):
    database = api.Database(f"sqlite:///{tmp_path}/f.sqlite")
    api.sync(database)
    yield database
    database.dispose()


def test_methods_wait_for_the_service_and_report_its_error(db) -> None:
    net = make_network(db)
    vm = make_instance(db, "vm1", net, 1, host="h1").instance
    driver = FirewallDriver(db, "h1", interval=0.01, timeout=0.2)
    with pytest.raises(exception.NotReady, match="compute role"):
        driver.prepare_instance_filter(vm)
    assert not driver.instance_filter_exists(vm)
    site = Site(db, None)
    site.daemon.run_once()
    driver.setup_basic_filtering(vm)
    driver.prepare_instance_filter(vm, network_info=[])
    driver.apply_instance_filter(vm)
    driver.ensure_filtering_rules_for_instance(vm.uuid)
    assert driver.instance_filter_exists(vm)
    group = sg.add_group(db, "web")
    sg.add_rule(db, group)
    with pytest.raises(exception.NotReady, match="need"):
        driver.refresh_security_group_rules(group)  # not synced yet
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            site.daemon.run_once()
            done.wait(0.01)

    server = threading.Thread(target=serve)
    server.start()
    # While the service runs, the calls must succeed: a timeout long
    # enough for a loaded CI machine (0.2 s was not), still bounded.
    served = FirewallDriver(db, "h1", interval=0.01, timeout=30)
    try:
        served.refresh_security_group_rules(group)
        served.refresh_instance_security_rules(vm)
        api.deallocate_for_instance(db, vm.uuid)
        served.unfilter_instance(vm)
    finally:
        done.set()
        server.join()
    assert site.chain(vm.id) is None
    assert not driver.instance_filter_exists(vm)


def test_another_hosts_instance_is_refused(db) -> None:
    net = make_network(db)
    vm = make_instance(db, "vm1", net, 1, host="h2").instance
    with pytest.raises(exception.InvalidInput, match="on h2, not h1"):
        FirewallDriver(db, "h1").prepare_instance_filter(vm)


def test_wait_ready_waits_for_the_filter_on_a_compute_host(db) -> None:
    net = make_network(db)
    info = make_instance(db, "vm1", net, 1, host="h1")
    site = Site(db, None)
    site.daemon.run_once()
    assert api.host_state(db, "h1", "firewall", host_key("h1"))
    api.host_state_set(db, "h1", net.id, "dhcp", 10**6)  # DHCP is ready
    manager.wait_ready(db, [info], "h1", 0.2)
    vm2 = make_instance(db, "vm2", net, 2, host="h1")  # not synced yet
    with pytest.raises(exception.NotReady, match="firewall filter") as err:
        manager.wait_ready(db, [vm2], "h1", 0.2, interval=0.01)
    assert err.value.kwargs["what"] == "firewall"
    site.daemon.run_once()
    manager.wait_ready(db, [vm2], "h1", 0.2)
    other = make_instance(db, "vm3", net, 3, host="h3")  # no compute role
    manager.wait_ready(db, [other], "h1", 0.2)


def _conf(tmp_path, text: str) -> str:
    path = tmp_path / "flatnet.conf"
    path.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path}/state\n{text}\n"
        f"[database]\nconnection = sqlite:///{tmp_path}/f.sqlite\n"
    )
    return str(path)


def test_roles_option(tmp_path) -> None:
    loaded = settings.load([_conf(tmp_path, "")])
    assert loaded.roles == ("network", "compute")
    assert loaded.firewall.remote_group_sets
    assert not loaded.use_nwfilter
    loaded = settings.load(
        [
            _conf(
                tmp_path,
                "flatnet_roles = compute\n"
                "firewall_remote_group_sets = false\n"
                "allow_same_net_traffic = false",
            )
        ]
    )
    assert loaded.roles == ("compute",)
    assert not loaded.firewall.remote_group_sets
    assert not loaded.firewall.allow_same_net_traffic
    for bad in ("flatnet_roles = storage", "flatnet_roles ="):
        with pytest.raises(exception.ConfigError, match="flatnet_roles"):
            settings.load([_conf(tmp_path, bad)])


def test_network_host_builds_the_reconcilers_of_its_roles(tmp_path) -> None:
    from flatnet import wiring  # noqa: PLC0415

    db = api.Database(f"sqlite:///{tmp_path}/f.sqlite", create=True)
    api.sync(db)
    db.dispose()
    for roles, parts in (
        ("network,compute", ["dhcp", "rules", "firewall"]),
        ("compute", ["firewall"]),
        ("network", ["dhcp", "rules"]),
    ):
        conf = _conf(
            tmp_path, f"flatnet_roles = {roles}\niptables_backend = restore"
        )
        daemon = wiring.network_host(settings.load([conf]))
        assert [r.component for r in daemon.reconcilers] == parts
        daemon.db.dispose()
    driver = wiring.driver_api(settings.load([_conf(tmp_path, "")]))
    assert driver.host == settings.load([_conf(tmp_path, "")]).host
