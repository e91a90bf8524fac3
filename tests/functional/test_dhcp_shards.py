"""Sharded DHCP with real dnsmasq (one per shard, each in a namespace of
its own), a real bridge nftables table and busybox udhcpc clients
(root only)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from flatnet import exception
from flatnet.linux import dhcp_inform, netlink
from flatnet.model import Lease
from tests.functional import netns
from tests.functional.dhcp_site import wait_for
from tests.functional.shard_site import ShardSite, entry

ROOT = pathlib.Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def site(make_netns, world_readable_dir) -> Iterator[ShardSite]:
    made = ShardSite(make_netns, world_readable_dir, shards=2)
    yield made
    made.close()


def _two_clients(site: ShardSite):
    site.entries = [entry(10, 0), entry(11, 1)]
    assert site.sync()
    return [site.plug(e) for e in site.entries]


def test_each_client_is_served_by_its_own_shard_and_renews(site) -> None:
    clients = _two_clients(site)
    for client, host, shard in zip(
        clients, site.entries, (254, 253), strict=True
    ):
        got = client.bound()
        assert got["ip"] == str(host.address)
        # what a guest sees: its shard is the server, gateway and DNS stay
        assert got["serverid"] == f"10.77.0.{shard}"
        assert got["router"] == "10.77.0.1"
        assert got["dns"] == "10.77.0.1"
        # a unicast renewal reaches the owner and is ACKed
        assert client.renew()["event"] == "renew"
    mac0, mac1 = (str(e.mac).lower().replace("-", ":") for e in site.entries)
    assert any(mac0 in x for x in site.journal(0))
    assert not any(mac1 in x for x in site.journal(0))  # steered away
    assert any(mac1 in x for x in site.journal(1))


def test_steering_drops_foreign_macs_at_the_shard_port(site) -> None:
    _two_clients(site)
    out = netns.run(
        ["nft", "list", "table", "bridge", f"flatnet_{site.bridge}"], site.host
    ).stdout
    assert "fa:16:3e:77:00:0a" in out.split("set s0")[1].split("}")[0]
    assert "fa:16:3e:77:00:0b" in out.split("set s1")[1].split("}")[0]


def test_new_hosts_join_the_set_then_go_live_without_restart(site) -> None:
    _two_clients(site)
    pids = [site.shard_pid(0), site.shard_pid(1)]
    site.entries = [*site.entries, entry(12, 1), entry(13, 0)]
    assert site.sync()
    assert [site.shard_pid(0), site.shard_pid(1)] == pids  # no restart
    new = site.plug(site.entries[2])
    assert new.bound()["serverid"] == "10.77.0.253"


def test_dhcp_release_frees_the_lease_in_the_owner_shard(site) -> None:
    clients = _two_clients(site)
    for c in clients:
        c.bound()
    gone = site.entries[1]
    clients[1].stop()
    site.leased = [
        Lease(e.mac, e.address, e.hostname, e.shard) for e in site.entries
    ]
    site.entries = site.entries[:1]
    site.sync()  # the lease of .11 is stale: released in shard 1
    mac = str(gone.mac).lower().replace("-", ":")
    wait_for(lambda: f"del {mac} {gone.address}" in site.journal(1), 5, "del")
    assert not any(x.startswith("del") for x in site.journal(0))


def test_a_killed_shard_blinds_only_its_own_clients(site) -> None:
    clients = _two_clients(site)
    for c in clients:
        c.bound()
    site.leased = [
        Lease(e.mac, e.address, e.hostname, e.shard) for e in site.entries
    ]
    shard1 = site.dhcp.shards_of(7)[1]
    pid = site.shard_pid(1)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: site.shard_pid(1) is None, 5, "shard 1 gone")
    started = time.monotonic()
    site.keeper.check()  # what the keeper thread does every 50 ms
    assert dhcp_inform.wait_informed(
        shard1.spec.netns, "10.77.0.253", "10.77.0.11", site.entries[1].mac, 2
    )
    took = time.monotonic() - started
    print(
        f"shard restarted and answering {took * 1000:.0f} ms after the "
        f"keeper's check (load {os.getloadavg()[0]:.2f})"
    )
    # the other shard's client never noticed
    assert clients[0].renew()["event"] == "renew"
    # its client renews: the restarted shard knows no lease (a Lua
    # hook gets no init) and ACKs it as authoritative, no NAK
    answer = clients[1].renew()
    assert answer["event"] == "renew"
    assert not [e for e in clients[1].events() if e["event"] == "nak"]


def test_teardown_removes_namespaces_veths_and_table(site) -> None:
    _two_clients(site)
    names = [s.spec.netns for s in site.dhcp.shards_of(7)]
    veths = [s.spec.veth for s in site.dhcp.shards_of(7)]
    site.dhcp.remove(site.network, site.rows)
    assert not any(netlink.netns_exists(n) for n in names)
    links = netns.run(["ip", "-o", "link"], site.host).stdout
    assert not any(f" {v}@" in links or f" {v}:" in links for v in veths)
    tables = netns.run(["nft", "list", "tables"], site.host).stdout
    assert f"flatnet_{site.bridge}" not in tables
    ps = subprocess.run(
        ["pgrep", "-af", f"nova-{site.bridge}-"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    assert "dnsmasq" not in ps


def test_kill_9_of_the_daemon_mid_batch_loses_nothing(site) -> None:
    _two_clients(site)
    pids = [site.shard_pid(0), site.shard_pid(1)]
    more = [entry(last, last % 2) for last in range(20, 220)]
    hosts = [[e.address.words[-1], e.shard] for e in [*site.entries, *more]]
    raw = json.dumps(
        {
            "networks_path": site.settings.networks_path,
            "host": site.host,
            "bridge": site.bridge,
            "shards": 2,
            "hosts": hosts,
        }
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "tests.functional.shard_daemon", raw],
        cwd=ROOT,
    )
    batches = pathlib.Path(site.dhcp.shards_of(7)[1].spec.paths.hostsdir)
    wait_for(lambda: len(list(batches.iterdir())) >= 2, 20, "two batches")
    daemon.kill()  # SIGKILL, mid-way through the batches
    daemon.wait()
    written = len(list(batches.iterdir()))
    print(f"killed after {written} of 25 batches of shard 1")
    assert written < 25  # it really was cut off part-way
    site.entries = [*site.entries, *more]
    assert site.sync()  # the next daemon, from disk
    assert [site.shard_pid(0), site.shard_pid(1)] == pids  # no restart
    for shard in site.dhcp.shards_of(7):
        for host in [e for e in site.entries if e.shard == shard.spec.index]:
            assert dhcp_inform.wait_informed(
                shard.spec.netns,
                str(shard.spec.address),
                str(host.address),
                host.mac,
                2,
            ), host
    out = netns.run(
        ["nft", "list", "set", "bridge", f"flatnet_{site.bridge}", "s1"],
        site.host,
    ).stdout
    assert "fa:16:3e:77:00:db" in out  # the last host of shard 1


def test_a_missing_bridge_is_named_not_a_traceback() -> None:
    """The shard's veth cannot join a bridge that is not there: one
    DeviceNotFound naming the bridge (was a ValueError from unpacking an
    empty netlink lookup)."""
    with netns.namespace("host") as host, netns.namespace("shard") as inner:
        with pytest.raises(exception.DeviceNotFound, match="brnothere") as err:
            netlink.ensure_shard_link(
                host, "brnothere", "vshtest0", inner, "10.99.0.2/24"
            )
        assert "brnothere" in str(err.value)
