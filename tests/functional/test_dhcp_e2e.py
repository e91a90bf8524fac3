"""End to end: the real flatnet-network daemon, dnsmasq, hooks and busybox
udhcpc clients in network namespaces (root only)."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time

import netaddr
import pytest

from flatnet.db import api as db_api
from tests.functional.dhcp_site import Site, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

MAC1 = "fa:16:3e:00:01:01"
MAC2 = "fa:16:3e:00:01:02"


@pytest.fixture
def site(make_dhcp_site) -> Site:
    return make_dhcp_site()


def _db(site: Site) -> db_api.Database:
    return db_api.Database(f"sqlite:///{site.tmp}/flatnet.sqlite")


def _leased(site: Site) -> set[str]:
    return {str(x.address) for x in db_api.leases(_db(site), 1)}


def _hosts_reads(site: Site) -> int:
    log = site.tmp / "dnsmasq.log"
    return log.read_text().count(f"read {site.np}/nova-br100.conf")


def test_clients_get_their_allocation(site):
    site.start_daemon()
    first = site.create("vm1", MAC1)["interfaces"][0]
    second = site.create("vm2", MAC2)["interfaces"][0]
    for name, mac, iface in (("vm1", MAC1, first), ("vm2", MAC2, second)):
        client = site.client(site.plug(mac))
        got = client.bound()
        assert got["ip"] == iface["address"]
        assert got["router"] == "10.231.0.1"
        assert got["dns"] == "10.231.0.1"  # nova: dnsmasq itself
        assert (got["hostname"], got["domain"]) == (name, "novalocal")
    wait_for(
        lambda: _leased(site) == {first["address"], second["address"]},
        5,
        "both leases recorded in the database",
    )
    assert _hosts_reads(site) == 1  # new hosts went live by inotify


def test_kill_9_dnsmasq_restarts_fast_and_clients_renew(site):
    site.start_daemon()
    address = site.create("vm1", MAC1)["interfaces"][0]["address"]
    client = site.client(site.plug(MAC1))
    client.bound()
    wait_for(lambda: _leased(site) == {address}, 5, "lease recorded")
    old = site.dnsmasq_pid()
    killed = time.monotonic()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: site.dnsmasq_pid() not in (None, old), 5, "restart")
    restart = time.monotonic() - killed
    assert restart < 2.0, restart
    assert client.renew() == "renew"  # init gave it the lease: no NAK
    # the init snapshot lived only for that start (removed once the
    # starter's own probe was answered, a moment after the client's)
    init = site.np / "nova-br100.init"
    wait_for(lambda: not init.exists(), 5, "init snapshot removed")


def test_daemon_restart_adopts_dnsmasq_and_loses_nothing(site):
    site.start_daemon()
    site.create("vm1", MAC1)
    client = site.client(site.plug(MAC1))
    client.bound()
    pid = site.dnsmasq_pid()
    hosts = (site.np / "nova-br100.conf").read_text()
    reads = _hosts_reads(site)
    site.stop_daemon()
    assert site.dnsmasq_pid() == pid  # keeps serving meanwhile
    site.start_daemon()
    site.create("vm2", MAC2)  # --wait: the new daemon made it live
    assert site.dnsmasq_pid() == pid
    assert (site.np / "nova-br100.conf").read_text() == hosts
    assert _hosts_reads(site) == reads  # no HUP, no restart
    assert client.renew() == "renew"
    assert site.client(site.plug(MAC2)).bound()["hostname"] == "vm2"


def test_deleted_instance_is_released_and_refused(site):
    site.start_daemon()
    address = site.create("vm1", MAC1)["interfaces"][0]["address"]
    client = site.client(site.plug(MAC1))
    client.bound()
    wait_for(lambda: _leased(site) == {address}, 5, "lease recorded")
    site.manage("instance", "delete", "vm1")
    events = site.np / "nova-br100.events"
    wait_for(
        lambda: f"del {MAC1} {address}" in events.read_text(),
        10,
        "dhcp_release answered by a 'del' event",
    )

    def disassociated() -> bool:
        rows = db_api.fixed_ip_list(_db(site))
        row = next(r for r in rows if str(r.address) == address)
        return row.instance_uuid is None and not row.leased

    wait_for(disassociated, 5, "address back in the pool after release")
    assert client.renew() == "nak"
    again = site.create("vm3", MAC2)["interfaces"][0]["address"]
    if again == address:  # reused only now, after the release
        assert site.client(site.plug(MAC2)).bound()["ip"] == address


def test_stale_pid_file_is_never_signalled(site):
    site.np.mkdir(exist_ok=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (site.np / "nova-br100.pid").write_text(f"{sleeper.pid}\n")
        site.start_daemon()
        assert site.dnsmasq_pid() != sleeper.pid
        time.sleep(0.3)
        assert sleeper.poll() is None  # alive, never signalled
        status = pathlib.Path(f"/proc/{sleeper.pid}/status").read_text()
        assert "SigPnd:\t0000000000000000" in status
    finally:
        sleeper.kill()
        sleeper.wait()


def test_burst_of_200_allocations_costs_no_reload(site):
    site.start_daemon()
    reads = _hosts_reads(site)
    db = _db(site)
    spec = db_api.InstanceSpec
    for n in range(200):
        mac = netaddr.EUI(f"fa:16:3e:00:02:{n:02x}")
        db_api.instance_create_allocated(
            db,
            spec(hostname=f"b{n}", display_name=f"b{n}", host="nethost"),
            [db_api.VifRequest(network_id=1, mac=mac)],
        )
    generation = db_api.network_generations(db)[1]
    wait_for(
        lambda: db_api.host_state_get(db, "nethost", 1, "dhcp") >= generation,
        20,
        "burst live",
    )
    assert _hosts_reads(site) - reads <= 1
    client = site.client(site.plug("fa:16:3e:00:02:c7"))
    assert client.bound()["hostname"] == "b199"
