"""One contract for every BridgeBackend: FakeBridge and NetlinkBridge.

The same tests run against the in-memory fake and the real executor in
a fresh network namespace, so the fake the service tests use cannot
drift from what the kernel does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import netaddr
import pytest

from flatnet import exception
from flatnet.linux.bridge import NetlinkBridge
from flatnet.plan.bridge import BridgeSpec
from tests.fakes_bridge import FakeBridge
from tests.functional import netns

GATEWAY = netaddr.IPNetwork("10.201.0.1/24")


class FakeHost:
    """The fake backend plus test-side set-up and read-back."""

    def __init__(self) -> None:
        self.backend = FakeBridge()

    def add_interface(self, name: str, addresses: Iterable[str] = ()) -> None:
        self.backend.add_interface(name, addresses)

    def addresses(self, name: str) -> list[str]:
        return list(self.backend.links[name].addresses)

    def mac(self, name: str) -> str:
        return self.backend.links[name].mac


class NetnsHost:
    """NetlinkBridge in a namespace; set-up and read-back use ``ip``."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.backend = NetlinkBridge(netns=ns)

    def add_interface(self, name: str, addresses: Iterable[str] = ()) -> None:
        netns.run(
            [
                "ip",
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                f"{name}p",
            ],
            netns=self.ns,
        )
        netns.run(["ip", "link", "set", name, "up"], netns=self.ns)
        for address in addresses:
            netns.run(
                ["ip", "addr", "add", address, "dev", name], netns=self.ns
            )

    def addresses(self, name: str) -> list[str]:
        return [
            f"{a['local']}/{a['prefixlen']}"
            for a in self._show("addr", name)["addr_info"]
            if a["family"] == "inet" and a["scope"] == "global"
        ]

    def mac(self, name: str) -> str:
        return str(self._show("link", name)["address"])

    def _show(self, what: str, name: str) -> dict[str, Any]:
        out = netns.run(
            ["ip", "-j", what, "show", "dev", name], netns=self.ns
        ).stdout
        (entry,) = json.loads(out)
        return dict(entry)


@pytest.fixture(
    params=["fake", pytest.param("netlink", marks=pytest.mark.root)]
)
def host(
    request: pytest.FixtureRequest, make_netns: Callable[[str], str]
) -> FakeHost | NetnsHost:
    if request.param == "fake":
        return FakeHost()
    return NetnsHost(make_netns("brc"))


def test_creates_bridge_with_port(host):
    host.add_interface("eth1")
    host.backend.ensure_bridge(BridgeSpec("br100", "eth1", GATEWAY))
    state = host.backend.bridge_state("br100")
    assert host.backend.link_exists("br100")
    assert (state.up, state.stp, state.forward_delay) == (True, False, 0)
    assert state.ports == ("eth1",)
    assert state.mac == host.mac("eth1")
    assert state.addresses == ("10.201.0.1/24",)


def test_moves_interface_addresses_after_gateway(host):
    host.add_interface("eth1", ["172.31.7.5/24", "10.201.0.10/24"])
    host.backend.ensure_bridge(BridgeSpec("br100", "eth1", GATEWAY))
    state = host.backend.bridge_state("br100")
    assert state.addresses[0] == "10.201.0.1/24"
    assert set(state.addresses) == {
        "10.201.0.1/24",
        "172.31.7.5/24",
        "10.201.0.10/24",
    }
    assert host.addresses("eth1") == []


def test_second_run_keeps_state(host):
    host.add_interface("eth1", ["172.31.7.5/24"])
    spec = BridgeSpec("br100", "eth1", GATEWAY, mtu=1400)
    host.backend.ensure_bridge(spec)
    before = host.backend.bridge_state("br100")
    host.backend.ensure_bridge(spec)
    assert host.backend.bridge_state("br100") == before


def test_bridge_without_interface_or_gateway(host):
    host.backend.ensure_bridge(BridgeSpec("br100", None, None))
    state = host.backend.bridge_state("br100")
    assert (state.ports, state.addresses, state.up) == ((), (), True)


def test_mtu(host):
    host.add_interface("eth1")
    host.backend.ensure_bridge(BridgeSpec("br100", "eth1", None, mtu=1400))
    assert host.backend.bridge_state("br100").mtu == 1400


def test_missing_interface_changes_nothing(host):
    with pytest.raises(exception.DeviceNotFound, match="eth9"):
        host.backend.ensure_bridge(BridgeSpec("br100", "eth9", GATEWAY))
    assert not host.backend.link_exists("br100")


def test_port_of_another_bridge_is_not_stolen(host):
    host.add_interface("eth1")
    host.backend.ensure_bridge(BridgeSpec("br100", "eth1", None))
    with pytest.raises(exception.BridgeSetupError) as info:
        host.backend.ensure_bridge(BridgeSpec("br200", "eth1", GATEWAY))
    assert {"eth1", "br100", "br200"} <= set(
        str(info.value).replace(",", " ").replace(":", " ").split()
    )
    assert not host.backend.link_exists("br200")
    assert host.backend.bridge_state("br100").ports == ("eth1",)


def test_existing_device_that_is_not_a_bridge(host):
    host.add_interface("eth1")
    with pytest.raises(exception.BridgeSetupError, match="not a bridge"):
        host.backend.ensure_bridge(BridgeSpec("eth1", None, GATEWAY))
    with pytest.raises(exception.BridgeSetupError, match="not a bridge"):
        host.backend.delete_bridge("eth1")
    assert host.backend.link_exists("eth1")
    assert host.addresses("eth1") == []


def test_delete_bridge_twice(host):
    host.add_interface("eth1")
    host.backend.ensure_bridge(BridgeSpec("br100", "eth1", GATEWAY))
    host.backend.delete_bridge("br100")
    host.backend.delete_bridge("br100")
    assert not host.backend.link_exists("br100")
    assert host.backend.bridge_state("br100") is None
    assert host.backend.link_exists("eth1")
