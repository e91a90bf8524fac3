"""Neutron export of security groups and floating IPs: the rule
mapping, nova's implied egress, the ``default`` group, the per-port
group list, floating IP bodies and the stand-in ids (refs)."""

from __future__ import annotations

import dataclasses

import netaddr

import flatnet.migrate.neutron_export as nx
from flatnet.migrate import neutron_floating as nf
from flatnet.migrate import neutron_secgroups as ns
from flatnet.migrate import report
from flatnet.plan import firewall_model as fw
from tests.unit.test_migration_export import NET, PORT, PRESERVE

ANY4 = netaddr.IPNetwork("0.0.0.0/0")
WEB = ns.GroupInput(
    id=7, name="web", description=None, project_id="p1",
    rules=(
        fw.SecurityGroupRule("tcp", 80, 443, cidr=ANY4, id=3),
        fw.SecurityGroupRule("icmp", 8, -1, cidr=ANY4, id=4),
        fw.SecurityGroupRule("icmp", -1, -1, source_group=7, id=5),
        fw.SecurityGroupRule(None, None, None, source_group=2, id=6),
    ),
)  # fmt: skip
DEFAULT = ns.GroupInput(id=2, name="default", description="default",
                        project_id="p1")  # fmt: skip


def _rules(group, same_net=()) -> list[dict]:
    return [b["security_group_rule"] for b in ns.group_rules(group, same_net)]


def test_each_nova_rule_becomes_one_ingress_rule():
    ref = ns.group_ref(7)
    assert _rules(WEB)[:4] == [
        {"security_group_id": ref, "direction": "ingress",
         "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 80,
         "port_range_max": 443, "remote_ip_prefix": "0.0.0.0/0"},
        {"security_group_id": ref, "direction": "ingress",
         "ethertype": "IPv4", "protocol": "icmp", "port_range_min": 8,
         "remote_ip_prefix": "0.0.0.0/0"},  # code -1: any
        {"security_group_id": ref, "direction": "ingress",
         "ethertype": "IPv4", "protocol": "icmp", "remote_group_id": ref},
        {"security_group_id": ref, "direction": "ingress",
         "ethertype": "IPv4", "remote_group_id": ns.group_ref(2)},
    ]  # fmt: skip


def test_nova_implied_egress_and_same_net_traffic():
    rules = _rules(WEB, ["10.0.0.0/24"])
    assert rules[4] == {
        "security_group_id": ns.group_ref(7), "direction": "ingress",
        "ethertype": "IPv4", "remote_ip_prefix": "10.0.0.0/24"}  # fmt: skip
    assert [(r["direction"], r["ethertype"]) for r in rules[5:]] == [
        ("egress", "IPv4"), ("egress", "IPv6")]  # fmt: skip
    assert all(len(r) == 3 for r in rules[5:])  # no protocol, port, remote
    assert len(_rules(WEB)) == 6  # allow_same_net_traffic off


def test_default_group_maps_to_neutrons_default():
    export = ns.export_groups([WEB, DEFAULT])
    assert export.groups == [
        {"security_group": {"name": "web", "description": "",
                            "project_id": "p1"}}]  # fmt: skip
    assert export.refs[ns.group_ref(2)] == {
        "kind": "default_security_group", "project_id": "p1"}  # fmt: skip
    (changes,) = export.defaults
    removed = [r["security_group_rule"] for r in changes["remove"]]
    # nova's default group had no rule: both of Neutron's self rules go
    assert [(r["ethertype"], r["remote_group_id"]) for r in removed] == [
        ("IPv4", ns.group_ref(2)), ("IPv6", ns.group_ref(2))]  # fmt: skip
    self_rule = fw.SecurityGroupRule(None, source_group=2, id=1)
    kept = dataclasses.replace(DEFAULT, rules=(self_rule,))
    (changes,) = ns.export_groups([kept]).defaults
    assert [r["security_group_rule"]["ethertype"]
            for r in changes["remove"]] == ["IPv6"]  # fmt: skip


FLOATING = (
    nf.FloatingInput(netaddr.IPAddress("172.24.4.3"), "public", "p1",
                     PORT.address, (NET.uuid, PORT.mac)),
    nf.FloatingInput(netaddr.IPAddress("172.24.4.1"), "public", "p2"),
    nf.FloatingInput(netaddr.IPAddress("172.24.4.9"), "public"),
)  # fmt: skip


def _export(floating=FLOATING, settings=PRESERVE) -> report.Export:
    extras = report.Extras(
        groups=[WEB, DEFAULT], members={PORT.instance_uuid: (7, 2)},
        floating=floating,
    )  # fmt: skip
    return report.build_export([NET], [PORT], {}, settings, extras=extras)


def test_floating_ips_and_their_external_network():
    export = _export()
    bodies = [b["floatingip"] for b in export.api["floatingips"]]
    assert bodies == [
        {"floating_network_id": nf.pool_ref("public"),
         "floating_ip_address": "172.24.4.1", "project_id": "p2"},
        {"floating_network_id": nf.pool_ref("public"),
         "floating_ip_address": "172.24.4.3", "project_id": "p1",
         "port_id": nf.port_ref(NET.uuid, PORT.mac),
         "fixed_ip_address": "10.0.0.2"},
    ]  # fmt: skip
    external = export.api["networks"][1]["network"]
    assert external["router:external"] is True
    subnet = export.api["subnets"][1]["subnet"]
    assert subnet["cidr"] == "172.24.4.0/28"
    assert subnet["allocation_pools"] == [
        {"start": "172.24.4.1", "end": "172.24.4.1"},
        {"start": "172.24.4.3", "end": "172.24.4.3"},
        {"start": "172.24.4.9", "end": "172.24.4.9"},
    ]  # the unallocated .9 stays in the pool, with no body
    (interface,) = export.api["router_interfaces"]
    assert interface == {
        "router_id": nf.router_ref("public"),
        "body": {"subnet_id": nx.subnet_ref(NET)},
    }
    router = export.api["routers"][0]["router"]
    assert router["external_gateway_info"]["network_id"] == (
        nf.pool_ref("public"))  # fmt: skip
    # --preserve put the DHCP port on the gateway the router needs
    assert any("DHCP port holds the gateway 10.0.0.1" in o
               for o in export.options)  # fmt: skip


def test_port_lists_its_instance_groups():
    port = _export().api["ports"][0]["port"]
    assert port["security_groups"] == [ns.group_ref(2), ns.group_ref(7)]


def _stand_ins(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _stand_ins(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _stand_ins(v, key)
    elif key in ("network_id", "subnet_id", "security_group_id",
                 "remote_group_id", "port_id", "floating_network_id",
                 "router_id", "security_groups"):  # fmt: skip
        yield value


def test_every_stand_in_id_resolves_to_its_body():
    export = _export(settings=nx.NeutronSettings())
    used = set(_stand_ins(export.api))
    assert used
    assert used <= set(export.refs)
    for what in export.refs.values():
        if "file" in what:
            kind = what["file"].removeprefix("api/").removesuffix(".json")
            assert export.api[kind][what["index"]]
    port = export.refs[nf.port_ref(NET.uuid, PORT.mac)]
    assert export.api["ports"][port["index"]]["port"]["mac_address"] == (
        PORT.mac)  # fmt: skip
    assert not any("DHCP port holds" in o for o in export.options)


def test_without_extras_the_export_is_unchanged():
    plain = report.build_export([NET], [PORT], {}, PRESERVE)
    assert set(plain.api) == {"networks", "subnets", "ports"}
    assert "security_groups" not in plain.api["ports"][0]["port"]
    assert plain.refs == {}
