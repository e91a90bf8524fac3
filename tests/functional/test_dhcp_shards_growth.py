"""A network grown past dhcp_shard_hosts goes from one dnsmasq to shards
through the real DhcpReconciler and database, and keeps every lease
(real dnsmasq, busybox udhcpc; root only)."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator

import netaddr
import pytest

from flatnet.db import api
from flatnet.linux import netlink
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.plan import dnsmasq as plan
from flatnet.service import dhcp
from flatnet.service.dhcp_keeper import DhcpTuning
from tests.db.conftest import make_instance, make_network
from tests.functional import netns, shard_site
from tests.functional.shard_site import Client

pytestmark = [pytest.mark.root, pytest.mark.slow]


class HostDnsmasq(DnsmasqProcess):
    """The single dnsmasq, run in the test's network-host namespace."""

    def __init__(self, bridge: str, paths: plan.DnsmasqPaths, host: str):
        super().__init__(bridge, paths, netns=host)
        self.host = host

    def wait_served(self, listen: str, timeout: float = 5.0) -> bool:
        with netlink.entered(self.host):
            return super().wait_served(listen, timeout)


@pytest.fixture
def rig(make_netns, world_readable_dir, tmp_path) -> Iterator[dict]:
    host = make_netns("h")
    bridge = netns.unique_name("b")
    netns.run(["ip", "link", "add", bridge, "type", "bridge"], host)
    netns.run(["ip", "link", "set", bridge, "up"], host)
    netns.run(["ip", "addr", "add", "10.79.0.1/24", "dev", bridge], host)
    db = api.Database(f"sqlite:///{tmp_path}/flatnet.sqlite")
    api.sync(db)
    network = make_network(db, cidr="10.79.0.0/24", bridge=bridge)
    np = world_readable_dir / "networks"
    settings = plan.DhcpSettings(
        networks_path=str(np),
        dhcpbridge="/bin/true",
        dhcp_lease_time=120,
        dhcp_shard_hosts=2,
    )
    rec = dhcp.DhcpReconciler(
        db, "nethost", settings, lambda b, p: HostDnsmasq(b, p, host)
    )
    rec.tuning = DhcpTuning(keeper_interval=0)
    rec.sharded.place(host)
    rec.prepare()
    script = world_readable_dir / "udhcpc.sh"
    script.write_text(shard_site.SCRIPT)
    script.chmod(0o755)
    made = {
        "host": host,
        "bridge": bridge,
        "db": db,
        "net": network,
        "rec": rec,
        "script": script,
        "dir": world_readable_dir,
        "clients": [],
    }
    yield made
    for client in made["clients"]:
        client.stop()
    rows = api.shard_list(db, network.id)
    with contextlib.suppress(Exception):
        rec.sharded.remove(api.network_get(db, network.id), rows)
    for row in rows:
        name = f"fn-{bridge}-s{row.index}"
        netns.kill_all(name)
        with contextlib.suppress(Exception):
            netlink.delete_netns(name)
    rec.close()
    db.dispose()


def _plug(rig, make_netns, mac: netaddr.EUI) -> Client:
    ns = make_netns("vm")
    port = netns.unique_name("p")
    netns.veth(rig["host"], port, ns, "eth0", mac_b=str(mac).replace("-", ":"))
    netns.run(
        ["ip", "link", "set", port, "master", rig["bridge"]], rig["host"]
    )
    client = Client(ns, rig["dir"] / f"{ns}.log", rig["script"])
    rig["clients"].append(client)
    return client


def _sync(rig) -> bool:
    network = api.network_get(rig["db"], rig["net"].id)
    return rig["rec"].sync_network(network)


def test_growing_past_the_limit_keeps_every_lease(rig, make_netns) -> None:
    db, net, rec = rig["db"], rig["net"], rig["rec"]
    infos = [
        make_instance(db, f"vm{i}", net, mac=0x790000 + i) for i in range(2)
    ]
    assert _sync(rig)
    assert api.shard_list(db, net.id) == []  # 2 hosts: one dnsmasq, nova's
    clients = [_plug(rig, make_netns, i.vif.address) for i in infos]
    for client, info in zip(clients, infos, strict=True):
        got = client.bound()
        assert got["ip"] == str(info.address)
        assert got["serverid"] == "10.79.0.1"
    rec.poll()  # the journal: both leases are in the database
    assert {x.address for x in api.leases(db, net.id)} == {
        i.address for i in infos
    }
    third = make_instance(db, "vm2", net, mac=0x790002)  # 3 > 2
    assert _sync(rig)
    shards = api.shard_list(db, net.id)
    assert len(shards) == 2
    owner = {e.address: e.shard for e in api.host_entries(db, net.id)}
    assert collections.Counter(owner.values()) == {0: 2, 1: 1}
    assert rec.state(net.id) is not None
    assert rec.keeper.restarted() == set()
    # the single dnsmasq is gone; each lease now lives in its shard
    address = {s.index: str(s.address) for s in shards}
    for client, info in zip(clients, infos, strict=True):
        answer = client.renew(timeout=20)  # unicast to .1 fails: rebind
        assert answer["event"] == "renew", answer
        assert answer["ip"] == str(info.address)
        assert answer["serverid"] == address[owner[info.address]]
        assert not [e for e in client.events() if e["event"] == "nak"]
    newcomer = _plug(rig, make_netns, third.vif.address)
    assert newcomer.bound()["serverid"] == address[owner[third.address]]
