"""PURE: the whole Neutron export, and what each guest would see change.

:func:`build_export` assembles :mod:`neutron_export`'s pieces per
network. :func:`guest_report` compares, per port, what the guest gets
over DHCP from flatnet's dnsmasq (nova's files: no option 6, so the
resolver is dnsmasq's own address; no MTU option; ``--domain`` is
``dhcp_domain``) with what it would get from Neutron's, and names for
every difference the setting that removes it. Under
:func:`neutron_export.preserving` the report is empty.

The DHCP fields are those a client's script sees (busybox udhcpc's
environment): ``ip``, ``mask``, ``router``, ``dns``, ``hostname``,
``domain``, ``lease``, ``serverid``, and ``mtu`` as the MTU the guest
ends up with (no option 26 keeps the link's 1500). dnsmasq sends the
host part of a hosts-file name as the host name and its ``--domain`` as
the domain (dnsmasq ``canonicalise`` drops a final dot,
``strip_hostname`` splits at the first dot).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import netaddr

import flatnet.migrate.neutron_export as nx
from flatnet.migrate import neutron_floating as nf
from flatnet.migrate import neutron_secgroups as ns
from flatnet.migrate import nova_names
from flatnet.model import Network
from flatnet.plan.dnsmasq import dhcp_address, opts_gateway, safe_hostname

LINK_MTU = 1500
SHARD_REMEDY = (
    "sharded network: the guest renews with its DHCP shard's address; "
    "under Neutron its unicast renewals go unanswered until rebinding "
    "(7/8 of the lease), which the DHCP port answers: the lease is kept"
)
FIELDS = ("ip", "mask", "router", "dns", "hostname", "domain", "lease",
          "mtu", "serverid")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class FlatnetDhcp:
    """flatnet's DHCP settings that shape what guests see."""

    dhcp_domain: str = "novalocal"
    dhcp_lease_time: int = 86400
    share_dhcp_address: bool = False
    #: sharded networks (more hosts than dhcp_shard_hosts): port address
    #: -> the address of the DHCP shard that serves it, which is the
    #: server identifier (option 54) that guest sees.
    shard_servers: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Extras:
    """What the export adds beyond DHCP: security groups (and each
    instance's groups, by instance uuid), floating IPs, and whether
    nova's ``allow_same_net_traffic`` was on."""

    groups: Sequence[ns.GroupInput] = ()
    members: Mapping[str, Sequence[int]] = dataclasses.field(
        default_factory=dict
    )
    floating: Sequence[nf.FloatingInput] = ()
    allow_same_net_traffic: bool = True
    external_physical_network: str = "external"


@dataclasses.dataclass(frozen=True)
class Export:
    api: dict[str, list[dict[str, Any]]]
    files: dict[str, str]  # relative path -> text
    argv: dict[str, list[str]]  # network uuid -> dnsmasq argv
    dhcp_ports: dict[int, netaddr.IPAddress]  # network id -> address
    options: list[str]
    refs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def _by_network(
    ports: Iterable[nx.PortInput],
) -> dict[int, list[nx.PortInput]]:
    grouped: dict[int, list[nx.PortInput]] = {}
    for port in ports:
        grouped.setdefault(port.network_id, []).append(port)
    return grouped


def build_export(
    networks: Sequence[Network],
    ports: Sequence[nx.PortInput],
    reserved: Mapping[int, Sequence[netaddr.IPAddress]],
    settings: nx.NeutronSettings,
    confs: str = "dhcp",
    extras: Extras | None = None,
) -> Export:
    """Everything ``export neutron`` writes, for ``networks``; with
    ``extras`` also security groups, floating IPs and ``refs`` (what
    each stand-in id in the bodies stands for)."""
    api: dict[str, list[dict[str, Any]]] = {
        "networks": [], "subnets": [], "ports": []}  # fmt: skip
    files: dict[str, str] = {}
    argv: dict[str, list[str]] = {}
    dhcp_ports: dict[int, netaddr.IPAddress] = {}
    grouped = _by_network(ports)
    for net in networks:
        mine = grouped.get(net.id, [])
        pools = nx.allocation_pools(net, reserved.get(net.id, ()))
        dhcp = nx.dhcp_port_address(net, mine, pools, settings)
        dhcp_ports[net.id] = dhcp
        api["networks"].append(nx.network_body(net, settings))
        api["subnets"].append(nx.subnet_body(net, pools, settings))
        api["ports"] += [nx.port_body(net, p, settings) for p in mine]
        api["ports"].append(nx.dhcp_port_body(net, dhcp))
        if extras is not None:
            _groups_of_ports(api["ports"][-len(mine) - 1 : -1], mine, extras)
        base = f"{confs}/{net.uuid}"
        files[f"{base}/host"] = nx.host_file(mine, settings)
        files[f"{base}/addn_hosts"] = nx.addn_hosts_file(mine, settings)
        files[f"{base}/opts"] = nx.opts_file(net, settings)
        files[f"{base}/leases"] = nx.leases_file(mine)
        argv[net.uuid] = nx.dnsmasq_argv(net, base, settings)
    export = Export(api, files, argv, dhcp_ports, nx.neutron_options(settings))
    if extras is not None:
        _add_extras(export, networks, ports, extras)
    return export


def _groups_of_ports(
    bodies: Sequence[dict[str, Any]],
    ports: Sequence[nx.PortInput],
    extras: Extras,
) -> None:
    """Each instance port gets its instance's groups (``[]``: none, as
    an instance without groups had no group rules under nova)."""
    for body, port in zip(bodies, ports, strict=True):
        groups = sorted(extras.members.get(port.instance_uuid, ()))
        body["port"]["security_groups"] = [ns.group_ref(g) for g in groups]


def _refs_of(
    export: Export, kind: str, refs: Mapping[str, dict[str, Any]]
) -> None:
    """Index the stand-ins of ``kind`` bodies appended after the ones
    already in ``export.api[kind]``."""
    offset = len(export.api.setdefault(kind, []))
    for ref, what in refs.items():
        if what.get("file") == f"api/{kind}.json":
            export.refs[ref] = {**what, "index": what["index"] + offset}


def _ref(kind: str, index: int) -> dict[str, Any]:
    return {"kind": kind, "file": f"api/{kind}s.json", "index": index}


def _base_refs(
    export: Export,
    networks: Sequence[Network],
    ports: Sequence[nx.PortInput],
) -> None:
    for n, net in enumerate(networks):
        export.refs[net.uuid] = _ref("network", n)
        export.refs[nx.subnet_ref(net)] = _ref("subnet", n)
    uuids = {n.id: n.uuid for n in networks}
    index = {
        (b["port"]["network_id"], b["port"].get("mac_address")): i
        for i, b in enumerate(export.api["ports"])
    }
    for port in ports:
        if port.network_id in uuids:
            key = (uuids[port.network_id], port.mac)
            export.refs[nf.port_ref(*key)] = _ref("port", index[key])


def _add_extras(
    export: Export,
    networks: Sequence[Network],
    ports: Sequence[nx.PortInput],
    extras: Extras,
) -> None:
    _base_refs(export, networks, ports)
    same_net = (
        [str(n.cidr) for n in networks] if extras.allow_same_net_traffic
        else []
    )  # fmt: skip
    groups = ns.export_groups(extras.groups, same_net)
    export.refs.update(groups.refs)
    export.api["security_groups"] = groups.groups
    export.api["security_group_rules"] = groups.rules
    export.api["default_security_groups"] = groups.defaults
    subnets = {n.uuid: nx.subnet_ref(n) for n in networks}
    floating = nf.export_floating(
        extras.floating, subnets, extras.external_physical_network
    )
    for kind in ("networks", "subnets", "routers"):
        _refs_of(export, kind, floating.refs)
        export.api[kind] += getattr(floating, kind)
    export.api["router_interfaces"] = floating.router_interfaces
    export.api["floatingips"] = floating.floatingips
    export.options.extend(floating.notes)
    export.options.extend(_floating_notes(export, networks, extras))


def _floating_notes(
    export: Export, networks: Sequence[Network], extras: Extras
) -> list[str]:
    if not export.api["floatingips"]:
        return []
    notes = [
        "neutron.conf [DEFAULT] service_plugins includes router (floating "
        "IPs need an L3 agent); ml2_conf.ini [ml2_type_flat] flat_networks "
        f"also lists {extras.external_physical_network} (the pools' "
        "external networks); set each pool subnet's gateway_ip to the "
        "upstream router (nova did not store it)"
    ]
    routed = {i["body"]["subnet_id"] for i in export.api["router_interfaces"]}
    for net in networks:
        dhcp = export.dhcp_ports.get(net.id)
        if nx.subnet_ref(net) in routed and dhcp == net.gateway:
            notes.append(
                f"subnet {nx.subnet_ref(net)} ({net.label}): the DHCP "
                f"port holds the gateway {net.gateway} the router "
                "interface needs; add the interface with a port at "
                "another address and move the gateway, or export "
                "without --preserve (guests then see a new DHCP server "
                "identifier: one unanswered unicast renewal each)"
            )
    return notes


# --- what the guest sees ---------------------------------------------------
def flatnet_view(
    network: Network, port: nx.PortInput, flat: FlatnetDhcp
) -> dict[str, str]:
    server = str(dhcp_address(network))
    router = opts_gateway(network, flat.share_dhcp_address)
    return {
        "ip": str(port.address),
        "mask": str(netaddr.IPNetwork(network.cidr).prefixlen),
        "router": str(router) if router else "",
        "dns": server,
        "hostname": safe_hostname(port.hostname, port.address),
        "domain": flat.dhcp_domain,
        "lease": str(flat.dhcp_lease_time),
        "mtu": str(LINK_MTU),
        "serverid": flat.shard_servers.get(str(port.address), server),
    }


def neutron_view(
    network: Network,
    port: nx.PortInput,
    dhcp_port: netaddr.IPAddress,
    settings: nx.NeutronSettings,
) -> dict[str, str]:
    servers = (
        nx.dns_servers_of(network) if settings.network_dns_servers else ()
    )
    name = nx.host_names(port, settings)[1].rstrip(".").split(".")[0]
    return {
        "ip": str(port.address),
        "mask": str(netaddr.IPNetwork(network.cidr).prefixlen),
        "router": str(network.gateway) if network.gateway else "",
        "dns": " ".join(servers) or str(dhcp_port),
        "hostname": name,
        "domain": settings.dns_domain.rstrip("."),
        "lease": str(settings.dhcp_lease_duration),
        "mtu": str(settings.mtu if settings.mtu > 0 else LINK_MTU),
        "serverid": str(dhcp_port),
    }


def _remedy(field: str, flat_value: str, flat: FlatnetDhcp) -> str:
    """The setting that makes Neutron give ``flat_value`` for ``field``."""
    if field == "serverid" and flat_value in flat.shard_servers.values():
        return SHARD_REMEDY
    return {
        "hostname": "ml2_conf.ini [ml2] extension_drivers = dns and "
        f"neutron.conf [DEFAULT] dns_domain = {flat.dhcp_domain}, so the "
        "exported port dns_name names the guest (export --preserve)",
        "domain": f"neutron.conf [DEFAULT] dns_domain = {flat.dhcp_domain} "
        "(the DHCP agent's --domain)",
        "dns": "subnet dns_nameservers = [] with the DHCP port at "
        f"{flat_value}: guests resolve through it as under flatnet "
        "(export --preserve)",
        "lease": f"neutron.conf [DEFAULT] dhcp_lease_duration = {flat_value}",
        "serverid": f"pre-create the subnet's DHCP port at {flat_value} "
        "(device_id reserved_dhcp_port; export --preserve); unicast "
        "renewals go to the server identifier",
        "mtu": f"network mtu = {flat_value} (flatnet sends no MTU option)",
        "router": f"subnet gateway_ip = {flat_value}",
    }.get(field, "no Neutron setting")


def guest_report(
    networks: Sequence[Network],
    ports: Sequence[nx.PortInput],
    dhcp_ports: Mapping[int, netaddr.IPAddress],
    flat: FlatnetDhcp,
    settings: nx.NeutronSettings,
) -> list[dict[str, str]]:
    """One entry per differing field per port, sorted by address."""
    by_id = {n.id: n for n in networks}
    found = []
    for port in sorted(ports, key=lambda p: int(p.address)):
        net = by_id.get(port.network_id)
        if net is None or not net.enable_dhcp:
            continue
        before = flatnet_view(net, port, flat)
        after = neutron_view(net, port, dhcp_ports[net.id], settings)
        for field in FIELDS:
            if before[field] != after[field]:
                found.append({
                    "instance": port.instance_uuid,
                    "hostname": port.hostname,
                    "mac": port.mac,
                    "field": field,
                    "flatnet": before[field],
                    "neutron": after[field],
                    "setting": _remedy(field, before[field], flat),
                })  # fmt: skip
    return found


def rename_entries(
    renames: Sequence[nova_names.Rename],
    networks: Sequence[Network],
    ports: Sequence[nx.PortInput],
    dhcp_ports: Mapping[int, netaddr.IPAddress],
    settings: nx.NeutronSettings,
) -> list[dict[str, str]]:
    """One ``hostname`` entry per port of each instance the import
    renamed: the guest saw nova's shared name, flatnet gives it the new
    one, Neutron what it would; no setting brings a shared name back."""
    by_id = {n.id: n for n in networks}
    moved = {r.instance_uuid: r for r in renames}
    found = []
    for port in sorted(ports, key=lambda p: int(p.address)):
        rename = moved.get(port.instance_uuid)
        net = by_id.get(port.network_id)
        if rename is None or net is None:
            continue
        after = neutron_view(net, port, dhcp_ports[net.id], settings)
        found.append({
            "instance": port.instance_uuid, "hostname": port.hostname,
            "mac": port.mac, "field": "hostname",
            "nova": rename.nova_hostname, "flatnet": port.hostname,
            "neutron": after["hostname"],
            "setting": f"renamed at import: under nova this guest was "
            f"{rename.nova_hostname!r}, a name instance {rename.kept_by} "
            "keeps (flatnet allows one live instance per host name)",
        })  # fmt: skip
    return found


def report_table(found: Sequence[dict[str, str]]) -> str:
    if not found:
        return (
            "no differences: guests see the same DHCP answers under Neutron\n"
        )
    lines = [
        f"{'hostname':<16} {'field':<9} {'flatnet':<22} "
        f"{'neutron':<30} setting"
    ]
    for d in found:
        lines.append(
            f"{d['hostname']:<16} {d['field']:<9} {d['flatnet']:<22} "
            f"{d['neutron']:<30} {d['setting']}"
        )
    return "\n".join(lines) + "\n"
