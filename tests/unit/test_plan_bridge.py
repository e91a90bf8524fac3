"""flatnet.plan.bridge: BridgeSpec from a Network, and its validation."""

from __future__ import annotations

import dataclasses

import netaddr
import pytest

from flatnet import exception
from flatnet.model import Network
from flatnet.plan.bridge import IFNAMSIZ, BridgeSpec, bridge_spec

NETWORK = Network(
    id=1,
    uuid="8a5e2b4c-0000-4000-8000-000000000001",
    label="private",
    cidr=netaddr.IPNetwork("10.0.0.0/24"),
    gateway=netaddr.IPAddress("10.0.0.1"),
    dhcp_server=netaddr.IPAddress("10.0.0.2"),
    dhcp_start=netaddr.IPAddress("10.0.0.3"),
    broadcast=netaddr.IPAddress("10.0.0.255"),
    netmask=netaddr.IPAddress("255.255.255.0"),
    bridge="br100",
    bridge_interface="eth1",
)


def network(**changes: object) -> Network:
    return dataclasses.replace(NETWORK, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bridge_interface", "flat_interface", "expected"),
    [
        ("eth1", None, "eth1"),
        ("eth1", "eth2", "eth2"),  # nova test_flat_override
        ("eth1", "", "eth1"),
        (None, "eth2", "eth2"),
        (None, None, None),
        ("", None, None),
    ],
)
def test_interface_flat_override(bridge_interface, flat_interface, expected):
    spec = bridge_spec(
        network(bridge_interface=bridge_interface), flat_interface
    )
    assert spec.interface == expected


def test_spec_from_network():
    spec = bridge_spec(network(mtu=1450), None)
    assert spec == BridgeSpec(
        name="br100",
        interface="eth1",
        gateway=netaddr.IPNetwork("10.0.0.2/24"),
        mtu=1450,
    )
    # the host part is kept: the bridge address, not the network
    assert str(spec.gateway) == "10.0.0.2/24"


def test_gateway_uses_the_network_prefixlen():
    spec = bridge_spec(network(cidr=netaddr.IPNetwork("10.0.0.0/20")), None)
    assert str(spec.gateway) == "10.0.0.2/20"


def test_no_dhcp_server_means_no_gateway():
    assert bridge_spec(network(dhcp_server=None), None).gateway is None


def test_dhcp_server_outside_the_network():
    bad = network(dhcp_server=netaddr.IPAddress("10.9.9.9"))
    with pytest.raises(exception.AddressOutOfRange, match="10.9.9.9"):
        bridge_spec(bad, None)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "1-15 characters"),
        ("b" * (IFNAMSIZ + 1), "1-15 characters"),
        ("br 100", "only letters"),
        ("br/100", "only letters"),
        ("br:0", "only letters"),
        ("..", "only letters"),
        ("brü", "only letters"),
    ],
)
def test_bad_bridge_names(name, reason):
    with pytest.raises(exception.InvalidDeviceName, match=reason) as info:
        bridge_spec(network(bridge=name), None)
    assert info.value.kwargs["name"] == name


def test_bad_flat_interface_name():
    with pytest.raises(exception.InvalidDeviceName, match="eth 1"):
        bridge_spec(NETWORK, "eth 1")


@pytest.mark.parametrize("name", ["b" * IFNAMSIZ, "br-100", "br_1.0", "x"])
def test_good_names(name):
    assert bridge_spec(network(bridge=name), None).name == name


def test_interface_cannot_be_the_bridge():
    with pytest.raises(exception.InvalidDeviceName, match="bridge itself"):
        bridge_spec(network(bridge_interface="br100"), None)


@pytest.mark.parametrize("mtu", [0, 67, 65536])
def test_bad_mtu(mtu):
    with pytest.raises(exception.InvalidInput, match=f"MTU {mtu} "):
        bridge_spec(network(mtu=mtu), None)


def test_ipv6_gateway_rejected():
    with pytest.raises(exception.InvalidCidr, match="IPv4"):
        BridgeSpec("br100", None, netaddr.IPNetwork("2001:db8::1/64"))


def test_spec_is_frozen():
    spec = bridge_spec(NETWORK, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "br200"  # type: ignore[misc]
