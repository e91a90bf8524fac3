"""flatnet.plan.nwfilter: the XML is parsed and its structure asserted
(nova's NWFilterFirewall names, order and parameters; flatnet's guards)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import netaddr
import pytest

from flatnet import exception
from flatnet.plan import nwfilter as plan

MAC = netaddr.EUI("fa:16:3e:11:22:33")


def spec(**kw) -> plan.NicFilterSpec:
    values = {
        "instance_name": "instance-00000007",
        "mac": MAC,
        "ips": (netaddr.IPAddress("10.0.0.5"),),
        "dhcp_server": netaddr.IPAddress("10.0.0.1"),
        "project_net": netaddr.IPNetwork("10.0.0.0/24"),
    }
    values.update(kw)
    return plan.NicFilterSpec(**values)


def parsed(flt: plan.NWFilter, uuid: str | None = None) -> ET.Element:
    return ET.fromstring(flt.xml(uuid))  # noqa: S314 (our own output)


def by_name(filters) -> dict[str, plan.NWFilter]:
    return {f.name: f for f in filters}


def test_instance_filter_name_is_novas():
    assert (
        plan.instance_filter_name("instance-00000007", MAC)
        == "nova-instance-instance-00000007-fa163e112233"
    )


def test_instance_filter_xml_refers_to_nova_base_with_parameters():
    root = parsed(
        plan.instance_filter(spec()), "0f0e0d0c-0b0a-0908-0706-050403020100"
    )
    assert root.tag == "filter"
    assert root.attrib == {
        "name": "nova-instance-instance-00000007-fa163e112233",
        "chain": "root",
    }
    assert root.find("uuid").text == "0f0e0d0c-0b0a-0908-0706-050403020100"
    (ref,) = root.findall("filterref")
    assert ref.get("filter") == "nova-base"
    assert [(p.get("name"), p.get("value")) for p in ref] == [
        ("IP", "10.0.0.5"),
        ("DHCPSERVER", "10.0.0.1"),
        ("PROJNET", "10.0.0.0"),
        ("PROJMASK", "255.255.255.0"),
    ]


def test_no_dhcp_server_means_nova_nodhcp_and_no_dhcpserver_parameter():
    root = parsed(plan.instance_filter(spec(dhcp_server=None)))
    ref = root.find("filterref")
    assert ref.get("filter") == "nova-nodhcp"
    assert "DHCPSERVER" not in [p.get("name") for p in ref]


def test_every_fixed_ip_is_one_ip_parameter():
    ips = (netaddr.IPAddress("10.0.0.5"), netaddr.IPAddress("10.0.0.6"))
    ref = parsed(plan.instance_filter(spec(ips=ips))).find("filterref")
    assert [p.get("value") for p in ref if p.get("name") == "IP"] == [
        "10.0.0.5",
        "10.0.0.6",
    ]


def test_without_ip_there_is_no_filter():
    with pytest.raises(exception.InvalidInput, match="needs an IP"):
        plan.instance_filter(spec(ips=()))


def test_ipv6_fixed_ip_is_refused():
    with pytest.raises(exception.InvalidIpAddress):
        spec(ips=(netaddr.IPAddress("fd00::5"),))


@pytest.mark.parametrize(
    "name", ["", "a b", "x/y", "<script>", "a'b", "-lead", "x" * 201]
)
def test_bad_names_are_refused(name):
    with pytest.raises(exception.InvalidInput):
        spec(instance_name=name)


def test_markup_in_values_is_escaped_by_the_builder():
    flt = plan.NWFilter(
        "x", "root", (plan.FilterRef("nova-base", (("IP", "a'<b>&\""),)),)
    )
    back, _ = plan.parse(flt.xml())
    assert back == flt


def test_bases_reference_novas_four_plus_guards_and_dhcp_server():
    static = by_name(plan.static_filters())
    common = [
        "no-mac-spoofing", "no-ip-spoofing", "no-arp-spoofing",
        "nova-no-nd-reflection", "flatnet-no-dhcp-server",
        "flatnet-no-dhcp6-server", "flatnet-no-ra", "flatnet-only-ip-arp",
    ]  # fmt: skip
    nodhcp = parsed(static["nova-nodhcp"])
    assert [r.get("filter") for r in nodhcp.findall("filterref")] == common
    base = parsed(static["nova-base"])
    assert [r.get("filter") for r in base.findall("filterref")] == [
        *common,
        "allow-dhcp-server",
    ]
    assert "nova-vpn" not in static  # removed in nova Pike


def test_static_filters_come_after_what_they_reference():
    order = [f.name for f in plan.static_filters()]
    assert (
        plan.undefined_refs(plan.static_filters(), plan.LIBVIRT_BUILTINS) == []
    )
    assert order.index("nova-base") > order.index("flatnet-only-ip-arp")


def test_nova_no_nd_reflection_and_allow_dhcp_server_are_novas():
    static = by_name(plan.static_filters())
    nd = parsed(static["nova-no-nd-reflection"])
    assert nd.get("chain") == "ipv6"
    rule = nd.find("rule")
    assert (rule.get("action"), rule.get("direction")) == ("drop", "in")
    assert rule.find("mac").attrib == {
        "dstmacaddr": "33:33:00:00:00:00",
        "dstmacmask": "ff:ff:00:00:00:00",
        "srcmacaddr": "$MAC",
    }
    dhcp = parsed(static["nova-allow-dhcp-server"])
    assert dhcp.get("chain") == "ipv4"
    out, inn = dhcp.findall("rule")
    assert out.find("udp").attrib == {
        "srcipaddr": "0.0.0.0", "dstipaddr": "255.255.255.255",
        "srcportstart": "68", "dstportstart": "67",
    }  # fmt: skip
    assert inn.get("direction") == "in"
    assert inn.find("udp").get("srcipaddr") == "$DHCPSERVER"


def _rules(
    root: ET.Element,
) -> list[tuple[str, str, str, str, dict[str, str]]]:
    return [
        (r.get("action"), r.get("direction"), r.get("priority"),
         r[0].tag if len(r) else "", dict(r[0].attrib) if len(r) else {})
        for r in root.findall("rule")
    ]  # fmt: skip


def test_guards_drop_dhcp_server_replies_ra_and_other_ethertypes():
    static = by_name(plan.static_filters())
    assert _rules(parsed(static["flatnet-no-dhcp-server"])) == [
        ("drop", "out", "90", "ip", {"protocol": "udp", "srcportstart": "67"})
    ]
    assert _rules(parsed(static["flatnet-no-dhcp6-server"])) == [
        (
            "drop",
            "out",
            "90",
            "ipv6",
            {"protocol": "udp", "srcportstart": "547"},
        )
    ]
    assert _rules(parsed(static["flatnet-no-ra"])) == [
        ("drop", "out", "90", "ipv6", {"protocol": "icmpv6", "type": "134"})
    ]
    assert _rules(parsed(static["flatnet-only-ip-arp"])) == [
        ("accept", "out", "900", "mac", {"protocolid": "arp"}),
        ("accept", "out", "900", "mac", {"protocolid": "ipv4"}),
        ("accept", "out", "900", "mac", {"protocolid": "ipv6"}),
        ("drop", "out", "1000", "", {}),
    ]


def test_host_filters_static_then_instances_sorted_and_prefixed():
    b = spec(instance_name="vm-b")
    a = spec(instance_name="vm-a", mac=netaddr.EUI("fa:16:3e:00:00:01"))
    names = [f.name for f in plan.host_filters([b, a], prefix="t-")]
    assert names[-2:] == [
        "t-nova-instance-vm-a-fa163e000001",
        "t-nova-instance-vm-b-fa163e112233",
    ]
    assert all(n.startswith("t-") for n in names)
    inst = by_name(plan.host_filters([a], prefix="t-"))[names[-2]]
    assert inst.refs == ("t-nova-base",)
    assert (
        "no-mac-spoofing"
        in by_name(plan.static_filters("t-"))["t-nova-base"].refs
    )


def test_two_nics_with_one_name_must_agree():
    with pytest.raises(exception.InvalidInput, match="two different"):
        plan.host_filters([spec(), spec(ips=(netaddr.IPAddress("10.0.0.9"),))])
    assert (
        len(plan.host_filters([spec(), spec()]))
        == len(plan.static_filters()) + 1
    )


def test_parse_and_same_ignore_libvirts_reordering_and_default_priority():
    flt = plan.instance_filter(spec())
    libvirt_form = """<filter
        name='nova-instance-instance-00000007-fa163e112233'
        chain='root' priority='0'><uuid>u-1</uuid>
        <filterref filter='nova-base'>
        <parameter name='DHCPSERVER' value='10.0.0.1'/>
        <parameter name='IP' value='10.0.0.5'/>
        <parameter name='PROJMASK' value='255.255.255.0'/>
        <parameter name='PROJNET' value='10.0.0.0'/></filterref></filter>"""
    live, uuid = plan.parse(libvirt_form)
    assert uuid == "u-1"
    assert plan.same(live, flt)
    other = plan.instance_filter(spec(ips=(netaddr.IPAddress("10.0.0.9"),)))
    assert not plan.same(live, other)


@pytest.mark.parametrize("text", ["<nope", "<domain/>", "<filter/>"])
def test_parse_refuses_what_is_not_a_filter(text):
    with pytest.raises(exception.InvalidInput):
        plan.parse(text)


def test_filterref_element_for_a_domain_interface():
    ref = plan.filterref_element("nova-instance-vm-fa163e112233")
    assert ET.tostring(ref, encoding="unicode") == (
        '<filterref filter="nova-instance-vm-fa163e112233" />'
    )


def test_bad_rule_and_parameter_names_are_refused():
    with pytest.raises(exception.InvalidInput):
        plan.Rule("allow", "out")
    with pytest.raises(exception.InvalidInput):
        plan.FilterRef("nova-base", (("ip", "1"),))
