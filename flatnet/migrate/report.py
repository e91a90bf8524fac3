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
class Export:
    api: dict[str, list[dict[str, Any]]]
    files: dict[str, str]  # relative path -> text
    argv: dict[str, list[str]]  # network uuid -> dnsmasq argv
    dhcp_ports: dict[int, netaddr.IPAddress]  # network id -> address
    options: list[str]


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
) -> Export:
    """Everything ``export neutron`` writes, for ``networks``."""
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
        base = f"{confs}/{net.uuid}"
        files[f"{base}/host"] = nx.host_file(mine, settings)
        files[f"{base}/addn_hosts"] = nx.addn_hosts_file(mine, settings)
        files[f"{base}/opts"] = nx.opts_file(net, settings)
        files[f"{base}/leases"] = nx.leases_file(mine)
        argv[net.uuid] = nx.dnsmasq_argv(net, base, settings)
    return Export(api, files, argv, dhcp_ports, nx.neutron_options(settings))


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
