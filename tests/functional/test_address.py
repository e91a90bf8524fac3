"""flatnet.linux.address in a fresh namespace: a scope-link /32 on lo
(the metadata address) and floating /32 binds, each idempotent."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.linux.address import HostAddresses
from flatnet.plan.host_rules import metadata_bind
from tests.functional import netns

pytestmark = pytest.mark.root


def addresses(ns: str, device: str) -> str:
    return netns.run(
        ["ip", "-4", "-o", "addr", "show", "dev", device], netns=ns
    ).stdout


def test_metadata_address_is_scope_link_on_lo_and_idempotent(make_netns):
    ns = make_netns("adr")
    addrs = HostAddresses(netns=ns)
    meta = metadata_bind()
    assert "169.254.169.254" not in addresses(ns, "lo")
    addrs.ensure_address(meta.device, meta.address, meta.scope)
    addrs.ensure_address(meta.device, meta.address, meta.scope)  # fine
    lines = [ln for ln in addresses(ns, "lo").splitlines() if "169.254" in ln]
    assert len(lines) == 1
    assert "inet 169.254.169.254/32 scope link lo" in lines[0]
    assert netaddr.IPAddress("169.254.169.254") in addrs.host_addresses("lo")


def test_address_in_a_missing_namespace_is_a_host_network_error():
    addrs = HostAddresses(netns=netns.unique_name("gone"))
    meta = metadata_bind()
    with pytest.raises(exception.HostNetworkError):
        addrs.ensure_address(meta.device, meta.address, meta.scope)


def test_floating_bind_and_unbind_are_idempotent(make_netns):
    ns = make_netns("adr")
    netns.run(
        ["ip", "link", "add", "pub0", "type", "veth", "peer", "pub1"], netns=ns
    )
    addrs = HostAddresses(netns=ns)
    ip = netaddr.IPAddress("172.31.70.10")
    addrs.ensure_address("pub0", ip)
    addrs.ensure_address("pub0", ip)
    assert "172.31.70.10/32" in addresses(ns, "pub0")
    assert addrs.host_addresses("pub0") == {ip}
    addrs.delete_address("pub0", ip)
    addrs.delete_address("pub0", ip)
    assert addrs.host_addresses("pub0") == set()
    with pytest.raises(exception.DeviceNotFound):
        addrs.ensure_address("nosuch0", ip)
