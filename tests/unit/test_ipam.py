"""flatnet.ipam: layouts (nova FlatDHCP values), validation, choosing."""

from __future__ import annotations

import netaddr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flatnet import exception, ipam

IP = netaddr.IPAddress


def test_flatdhcp_slash24_reserves_network_gateway_broadcast() -> None:
    layout = ipam.network_layout("192.168.0.0/24")
    assert layout.gateway == IP("192.168.0.1")
    assert layout.dhcp_server == IP("192.168.0.1")
    assert layout.dhcp_start == IP("192.168.0.2")
    assert layout.netmask == IP("255.255.255.0")
    assert layout.broadcast == IP("192.168.0.255")
    assert layout.reserved == {
        IP("192.168.0.0"),
        IP("192.168.0.1"),
        IP("192.168.0.255"),
    }
    assert layout.allocatable == 253


def test_given_gateway_and_dhcp_server_are_reserved() -> None:
    layout = ipam.network_layout(
        "10.0.0.0/24", gateway="10.0.0.254", dhcp_server="10.0.0.253"
    )
    assert layout.gateway == IP("10.0.0.254")
    assert layout.dhcp_server == IP("10.0.0.253")
    assert layout.dhcp_start == IP("10.0.0.1")
    assert layout.reserved == {
        IP("10.0.0.0"),
        IP("10.0.0.253"),
        IP("10.0.0.254"),
        IP("10.0.0.255"),
    }


def test_gateway_given_as_first_host_shifts_dhcp_start() -> None:
    layout = ipam.network_layout("10.0.0.0/24", gateway="10.0.0.1")
    assert layout.dhcp_start == IP("10.0.0.2")


def test_fixed_cidr_reserves_by_index_within_the_fixed_range() -> None:
    layout = ipam.network_layout("10.0.0.0/24", fixed_cidr="10.0.0.128/25")
    rows = list(ipam.fixed_ip_rows(layout))
    assert rows[0] == ("10.0.0.128", True)
    assert rows[-1] == ("10.0.0.255", True)
    assert len(rows) == 128
    assert [a for a, r in rows if r] == ["10.0.0.128", "10.0.0.255"]


def test_slash30_is_the_smallest_network() -> None:
    layout = ipam.network_layout("10.0.0.0/30")
    assert layout.allocatable == 1
    assert [a for a, r in ipam.fixed_ip_rows(layout) if not r] == ["10.0.0.2"]


@pytest.mark.parametrize(
    ("cidr", "kwargs", "error"),
    [
        ("10.0.0.0/31", {}, exception.InvalidCidr),
        ("10.0.0.0/32", {}, exception.InvalidCidr),
        ("10.0.0.1/24", {}, exception.InvalidCidr),
        ("10.0.0.0", {}, exception.InvalidCidr),
        ("banana/24", {}, exception.InvalidCidr),
        ("fd00::/64", {}, exception.InvalidCidr),
        ("10.0.0.0/33", {}, exception.InvalidCidr),
        ("10.0.0.0/24", {"gateway": "10.0.1.1"}, exception.AddressOutOfRange),
        ("10.0.0.0/24", {"gateway": "10.0.0.255"}, exception.InvalidIpAddress),
        ("10.0.0.0/24", {"gateway": "x"}, exception.InvalidIpAddress),
        (
            "10.0.0.0/24",
            {"dhcp_server": "10.9.0.1"},
            exception.AddressOutOfRange,
        ),
        (
            "10.0.0.0/24",
            {"fixed_cidr": "10.0.1.0/25"},
            exception.AddressOutOfRange,
        ),
        ("10.0.0.0/24", {"fixed_cidr": "10.0.0.0/31"}, exception.InvalidCidr),
    ],
)
def test_bad_input_is_rejected(cidr, kwargs, error) -> None:
    with pytest.raises(error):
        ipam.network_layout(cidr, **kwargs)


@pytest.mark.parametrize(
    "other", ["10.0.0.0/24", "10.0.0.128/25", "10.0.0.0/8", "10.0.0.255/32"]
)
def test_overlap_is_a_cidr_conflict(other) -> None:
    with pytest.raises(exception.CidrConflict):
        ipam.network_layout("10.0.0.0/24", existing=[netaddr.IPNetwork(other)])


def test_adjacent_networks_do_not_conflict() -> None:
    existing = [
        netaddr.IPNetwork("10.0.1.0/24"),
        netaddr.IPNetwork("9.0.0.0/8"),
    ]
    ipam.network_layout("10.0.0.0/24", existing=existing)


def test_fixed_ip_rows_cover_a_slash16_in_order() -> None:
    layout = ipam.network_layout("10.1.0.0/16")
    rows = list(ipam.fixed_ip_rows(layout))
    assert len(rows) == 65536
    assert rows[258] == ("10.1.1.2", False)
    assert sum(r for _, r in rows) == 3


def test_choose_prefers_never_used_then_least_recent() -> None:
    layout = ipam.network_layout("10.0.0.0/29")
    assert ipam.choose_free_address(layout, []) == IP("10.0.0.2")
    hosts = [IP(f"10.0.0.{i}") for i in range(2, 7)]
    times = {IP("10.0.0.5"): 10.0, IP("10.0.0.3"): 5.0}
    used = [a for a in hosts if a not in times]
    assert ipam.choose_free_address(layout, used, times) == IP("10.0.0.3")


def test_choose_raises_when_exhausted() -> None:
    layout = ipam.network_layout("10.0.0.0/30")
    with pytest.raises(exception.NoMoreFixedIps):
        ipam.choose_free_address(layout, [IP("10.0.0.2")])


prefixes = st.integers(min_value=22, max_value=30)


@st.composite
def layouts(draw: st.DrawFn) -> ipam.NetworkLayout:
    prefix = draw(prefixes)
    base = draw(st.integers(min_value=0x0A000000, max_value=0x0AFFFFFF))
    net = netaddr.IPNetwork(f"{IP(base)}/{prefix}").cidr
    gateway = None
    if draw(st.booleans()):
        gateway = str(IP(draw(st.integers(net.first + 1, net.last - 1))))
    return ipam.network_layout(str(net), gateway=gateway)


@settings(max_examples=60, deadline=None)
@given(layouts(), st.data())
def test_choose_never_returns_reserved_used_or_twice(layout, data) -> None:
    special = {
        layout.cidr.network,
        layout.cidr.broadcast,
        layout.gateway,
        layout.dhcp_server,
    }
    assert special <= set(layout.reserved)
    steps = data.draw(st.integers(1, min(layout.allocatable, 40)))
    given_out: list[netaddr.IPAddress] = []
    for _ in range(steps):
        addr = ipam.choose_free_address(layout, given_out)
        assert addr in layout.cidr
        assert addr not in layout.reserved
        assert addr not in given_out
        given_out.append(addr)


@settings(max_examples=30, deadline=None)
@given(layouts())
def test_layout_rows_match_reserved_set(layout) -> None:
    rows = dict(ipam.fixed_ip_rows(layout))
    assert len(rows) == layout.fixed_cidr.size
    assert {IP(a) for a, r in rows.items() if r} == set(layout.reserved)
    assert sum(not r for r in rows.values()) == layout.allocatable
