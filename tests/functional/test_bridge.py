"""NetlinkBridge against the real kernel, each test in its own netns.

The host namespace gets a veth ``eth1`` (the flat interface) with an
address, a default route and a static route; its peer ``peer0`` sits
in a second namespace, like a guest on the flat network. State is read
back via netlink and via ``ip`` output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import netaddr
import pytest
from pyroute2 import IPRoute

from flatnet import exception
from flatnet.linux.bridge import NetlinkBridge
from flatnet.plan.bridge import BridgeSpec
from tests.functional import netns

pytestmark = pytest.mark.root

SPEC = BridgeSpec("br100", "eth1", netaddr.IPNetwork("10.201.0.1/24"))


class _CountingIPRoute:
    """Passes reads through; records link/addr/route writes; refuses
    any other method, so an unforeseen write cannot go unnoticed."""

    _READS = frozenset({"dump", "get", "show"})
    _READ_METHODS = frozenset(
        {"link_lookup", "get_addr", "get_links", "close"}
    )

    def __init__(self, ipr: Any, writes: list[tuple[str, str]]) -> None:
        self._ipr = ipr
        self._writes = writes

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ipr, name)
        if name in self._READ_METHODS:
            return attr
        assert name in {"link", "addr", "route"}, f"unexpected {name}"

        def call(command: str, **kwargs: Any) -> Any:
            if command not in self._READS:
                self._writes.append((name, command))
            return attr(command, **kwargs)

        return call


class CountingBridge(NetlinkBridge):
    def __init__(self, ns: str) -> None:
        super().__init__(netns=ns)
        self.writes: list[tuple[str, str]] = []

    def _open(self) -> Any:
        return _CountingIPRoute(super()._open(), self.writes)


@pytest.fixture
def lab(make_netns: Callable[[str], str]) -> tuple[str, str]:
    """(host, peer) namespaces joined by eth1 <-> peer0."""
    host, peer = make_netns("brh"), make_netns("brp")
    netns.veth(host, "eth1", peer, "peer0")
    for argv in (
        ["ip", "addr", "add", "10.201.0.10/24", "dev", "eth1"],
        ["ip", "route", "add", "default", "via", "10.201.0.254"],
        [
            "ip",
            "route",
            "add",
            "10.250.0.0/24",
            "via",
            "10.201.0.253",
            "proto",
            "static",
        ],
    ):
        netns.run(argv, netns=host)
    netns.run(
        ["ip", "addr", "add", "10.201.0.20/24", "dev", "peer0"], netns=peer
    )
    return host, peer


def ip(ns: str, *argv: str) -> str:
    return netns.run(["ip", *argv], netns=ns).stdout


def ipv4(ns: str, dev: str) -> list[str]:
    entries = json.loads(ip(ns, "-j", "-4", "addr", "show", "dev", dev))
    return [
        f"{a['local']}/{a['prefixlen']}"
        for e in entries
        for a in e["addr_info"]
        if a["scope"] == "global"
    ]


def routes(ns: str) -> set[str]:
    """``ip route`` lines, without the carrier-dependent ``linkdown``."""
    return {
        " ".join(w for w in line.split() if w != "linkdown")
        for line in ip(ns, "-4", "route", "show").splitlines()
    }


def snapshot(ns: str) -> list[Any]:
    """Links (with bridge settings), IPv4 addresses and IPv4 routes;
    without timers and IPv6 DAD state, which change on their own."""
    keys = ("ifindex", "ifname", "flags", "mtu", "address", "master")
    links = [
        {k: link.get(k) for k in keys}
        for link in json.loads(ip(ns, "-j", "link", "show"))
    ]
    bridge = json.loads(ip(ns, "-d", "-j", "link", "show", "br100"))[0]
    data = bridge["linkinfo"]["info_data"]
    return [
        links,
        data["stp_state"],
        data["forward_delay"],
        json.loads(ip(ns, "-j", "-4", "addr", "show")),
        json.loads(ip(ns, "-j", "-4", "route", "show", "table", "all")),
    ]


def test_first_run_builds_bridge_and_moves_addresses_and_routes(lab):
    host, _ = lab
    NetlinkBridge(netns=host).ensure_bridge(SPEC)

    with IPRoute(netns=host, flags=0) as ipr:
        (br,) = ipr.link("get", ifname="br100")
        (port,) = ipr.link("get", ifname="eth1")
        data = ("linkinfo", "data")
        assert br.get(("linkinfo", "kind")) == "bridge"
        assert br.get((*data, "br_stp_state")) == 0
        assert br.get((*data, "br_forward_delay")) == 0
        assert br["flags"] & 1
        assert port.get("master") == br["index"]
        assert br.get("address") == port.get("address")
    detail = " ".join(ip(host, "-d", "link", "show", "br100").split())
    assert "forward_delay 0 " in detail
    assert "stp_state 0 " in detail
    assert ",UP" in detail
    assert "master br100" in ip(host, "link", "show", "eth1")
    assert ipv4(host, "br100") == ["10.201.0.1/24", "10.201.0.10/24"]
    assert ipv4(host, "eth1") == []
    assert {
        "default via 10.201.0.254 dev br100",
        "10.250.0.0/24 via 10.201.0.253 dev br100 proto static",
    } <= routes(host)
    assert not [r for r in routes(host) if "dev eth1" in r]


def test_second_run_issues_no_netlink_write(lab):
    host, _ = lab
    bridge = CountingBridge(host)
    started = time.perf_counter()
    bridge.ensure_bridge(SPEC)
    first = time.perf_counter() - started
    assert ("link", "add") in bridge.writes
    assert ("addr", "add") in bridge.writes
    before = snapshot(host)

    bridge.writes.clear()
    started = time.perf_counter()
    bridge.ensure_bridge(SPEC)
    second = time.perf_counter() - started

    assert bridge.writes == []
    assert snapshot(host) == before
    print(
        f"ensure_bridge first run {first * 1000:.1f} ms, "
        f"second run {second * 1000:.1f} ms"
    )


def test_existing_bridge_with_addresses_in_the_wrong_order(make_netns):
    host = make_netns("brw")
    for argv in (
        ["link", "add", "br100", "type", "bridge"],
        ["link", "set", "br100", "up"],
        ["addr", "add", "172.31.7.5/24", "dev", "br100"],
        ["addr", "add", "10.201.0.1/24", "dev", "br100"],
        ["route", "add", "10.251.0.0/24", "via", "172.31.7.254"],
        ["route", "add", "default", "via", "10.201.0.254"],
    ):
        ip(host, *argv)
    assert ipv4(host, "br100")[0] == "172.31.7.5/24"
    bridge = CountingBridge(host)

    bridge.ensure_bridge(BridgeSpec("br100", None, SPEC.gateway))

    assert ipv4(host, "br100") == ["10.201.0.1/24", "172.31.7.5/24"]
    assert {
        "10.251.0.0/24 via 172.31.7.254 dev br100",
        "default via 10.201.0.254 dev br100",
    } <= routes(host)
    bridge.writes.clear()
    bridge.ensure_bridge(BridgeSpec("br100", None, SPEC.gateway))
    assert bridge.writes == []


def test_existing_bridge_with_stp_gets_fixed(make_netns):
    host = make_netns("brs")
    ip(
        host,
        "link",
        "add",
        "br100",
        "type",
        "bridge",
        "stp_state",
        "1",
        "forward_delay",
        "1500",
    )

    NetlinkBridge(netns=host).ensure_bridge(
        BridgeSpec("br100", None, None, mtu=1400)
    )

    detail = " ".join(ip(host, "-d", "link", "show", "br100").split())
    assert "forward_delay 0 " in detail
    assert "stp_state 0 " in detail
    assert "mtu 1400 " in detail


def test_bridge_mac_stays_pinned_when_ports_are_added(lab):
    host, _ = lab
    NetlinkBridge(netns=host).ensure_bridge(SPEC)
    ip(
        host,
        "link",
        "add",
        "tap0",
        "address",
        "02:00:00:00:00:01",
        "type",
        "veth",
        "peer",
        "name",
        "tap0p",
    )
    # without a pinned MAC the bridge would now take this lower one
    ip(host, "link", "set", "tap0", "master", "br100")

    def mac(dev: str) -> str:
        return str(
            json.loads(ip(host, "-j", "link", "show", dev))[0]["address"]
        )

    assert mac("br100") == mac("eth1")


def test_traffic_reaches_the_gateway_through_the_bridge(lab):
    host, peer = lab

    def ping(address: str, wait: str = "2") -> int:
        argv = ["busybox", "ping", "-c", "1", "-W", wait, address]
        return netns.run(argv, netns=peer, check=False).returncode

    assert (
        ping("10.201.0.1", wait="1") != 0
    )  # nobody has the gateway address yet
    # forget the failed ARP lookup, or the next ping may be dropped
    netns.run(["ip", "neigh", "flush", "dev", "peer0"], netns=peer)
    NetlinkBridge(netns=host).ensure_bridge(SPEC)
    assert ping("10.201.0.1") == 0
    assert ping("10.201.0.10") == 0  # the moved host address still works


def test_delete_bridge_releases_the_port(lab):
    host, _ = lab
    bridge = NetlinkBridge(netns=host)
    bridge.ensure_bridge(SPEC)
    bridge.delete_bridge("br100")
    assert "br100" not in ip(host, "link", "show")
    assert "master" not in ip(host, "link", "show", "eth1")


def test_missing_namespace():
    bridge = NetlinkBridge(netns=netns.unique_name("gone"))
    with pytest.raises(exception.BridgeSetupError, match="br100"):
        bridge.ensure_bridge(SPEC)
