"""The compute driver's data: nova's network-info shape from an
allocation, and the libvirt <interface> element (parsed back)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import netaddr
import pytest

from flatnet import exception, model
from flatnet.plan import libvirt_interface as li
from flatnet.plan import nw_info, nwfilter

VIF_UUID = "0f3c1b2a-9d4e-4f00-8a11-223344556677"


def _info(**network: object) -> model.NetworkInfo:
    fields: dict[str, object] = {
        "id": 3,
        "uuid": "11111111-2222-3333-4444-555555555555",
        "label": "private",
        "cidr": netaddr.IPNetwork("10.0.0.0/24"),
        "gateway": netaddr.IPAddress("10.0.0.1"),
        "dhcp_server": None,
        "dhcp_start": netaddr.IPAddress("10.0.0.2"),
        "broadcast": netaddr.IPAddress("10.0.0.255"),
        "netmask": netaddr.IPAddress("255.255.255.0"),
        "bridge": "br100",
        "bridge_interface": "eth1",
        "dns1": netaddr.IPAddress("8.8.4.4"),
        "project_id": "proj",
    }
    fields.update(network)
    return model.NetworkInfo(
        instance=model.Instance(7, "inst-uuid", "vm1", "vm1", host="c1"),
        vif=model.Vif(
            1, VIF_UUID, netaddr.EUI("fa:16:3e:11:22:33"), 3, "inst-uuid"
        ),
        network=model.Network(**fields),  # type: ignore[arg-type]
        address=netaddr.IPAddress("10.0.0.5"),
        floating_addresses=(netaddr.IPAddress("172.24.4.9"),),
    )


def test_vif_dict_has_novas_shape() -> None:
    vif = nw_info.vif_dict(_info())
    assert vif["id"] == VIF_UUID
    assert vif["address"] == "fa:16:3e:11:22:33"
    assert vif["type"] == "bridge"
    assert vif["devname"] == "tap0f3c1b2a-9d"
    net = vif["network"]
    assert (net["id"], net["bridge"], net["label"]) == (
        "11111111-2222-3333-4444-555555555555", "br100", "private",
    )  # fmt: skip
    assert net["meta"] == {
        "tenant_id": "proj",
        "should_create_bridge": True,
        "bridge_interface": "eth1",
    }
    (subnet,) = net["subnets"]
    assert subnet["cidr"] == "10.0.0.0/24"
    assert subnet["gateway"]["address"] == "10.0.0.1"
    assert [d["address"] for d in subnet["dns"]] == ["8.8.4.4"]
    (ip,) = subnet["ips"]
    assert (ip["address"], ip["type"]) == ("10.0.0.5", "fixed")
    assert [f["address"] for f in ip["floating_ips"]] == ["172.24.4.9"]
    # nova _get_dhcp_ip: dhcp_server, else the gateway
    assert subnet["meta"] == {"dhcp_server": "10.0.0.1"}


def test_vif_dict_names_the_filter_the_compute_role_defines() -> None:
    info = _info(dhcp_server=netaddr.IPAddress("10.0.0.254"))
    meta = nw_info.vif_dict(info)["meta"]
    assert meta["instance_name"] == "instance-00000007"
    assert meta["nwfilter"] == "nova-instance-instance-00000007-fa163e112233"
    assert (
        meta["nwfilter"]
        == nwfilter.instance_filter(nw_info.filter_spec(info)).name
    )
    assert meta["nwfilter_parameters"] == [
        ["IP", "10.0.0.5"],
        ["DHCPSERVER", "10.0.0.254"],
        ["PROJNET", "10.0.0.0"],
        ["PROJMASK", "255.255.255.0"],
    ]


def test_without_dhcp_there_is_no_dhcp_server() -> None:
    vif = nw_info.vif_dict(_info(enable_dhcp=False))
    assert vif["network"]["subnets"][0]["meta"]["dhcp_server"] is None
    names = [n for n, _ in vif["meta"]["nwfilter_parameters"]]
    assert names == ["IP", "PROJNET", "PROJMASK"]


def test_interface_xml_parses_back() -> None:
    vif = nw_info.vif_dict(_info(mtu=1450))
    root = ET.fromstring(li.interface_xml(nw_info.interface_spec(vif)))  # noqa: S314 (our own XML)
    assert root.tag == "interface"
    assert root.get("type") == "bridge"
    assert root.find("mac").get("address") == "fa:16:3e:11:22:33"
    assert root.find("model").get("type") == "virtio"
    assert root.find("source").get("bridge") == "br100"
    assert root.find("target").get("dev") == "tap0f3c1b2a-9d"
    assert root.find("mtu").get("size") == "1450"
    ref = root.find("filterref")
    assert ref.get("filter") == "nova-instance-instance-00000007-fa163e112233"
    params = [(p.get("name"), p.get("value")) for p in ref]
    assert params == [
        ("IP", "10.0.0.5"),
        ("DHCPSERVER", "10.0.0.1"),
        ("PROJNET", "10.0.0.0"),
        ("PROJMASK", "255.255.255.0"),
    ]


def test_interface_without_filter_or_mtu() -> None:
    spec = li.InterfaceSpec(netaddr.EUI("fa:16:3e:00:00:01"), "br1", VIF_UUID)
    root = ET.fromstring(li.interface_xml(spec))  # noqa: S314 (our own XML)
    assert [c.tag for c in root] == ["mac", "model", "source", "target"]


@pytest.mark.parametrize(
    "change",
    [
        {"bridge": "br0'/><evil"},
        {"bridge": "a" * 16},
        {"model": "virtio'"},
        {"vif_id": "../../x"},
        {"vif_id": "short"},
        {"mtu": 10},
        {"filter_name": "bad name"},
        {"filter_name": "f", "parameters": (("ip", "1"),)},
    ],
)
def test_bad_input_is_refused(change: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "mac": netaddr.EUI("fa:16:3e:00:00:01"),
        "bridge": "br100",
        "vif_id": VIF_UUID,
    }
    fields.update(change)
    with pytest.raises(exception.InvalidInput):
        li.interface_xml(li.InterfaceSpec(**fields))  # type: ignore[arg-type]
