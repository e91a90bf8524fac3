"""PURE: flatnet's networks and ports as Neutron would hold them.

Renders, for each flat network, the Neutron API request bodies (a flat
provider network, its IPv4 subnet, one ``compute:nova`` port per
allocated fixed IP and a reserved DHCP port) and the files Neutron's
DHCP agent would write for them, in its exact formats, with the
command line it would start dnsmasq with. Source: Neutron
``neutron/agent/linux/dhcp.py`` (master, commit 2131d26f73):
``Dnsmasq._build_cmdline_callback``, ``_output_hosts_file``,
``_output_addn_hosts_file``, ``_output_opts_file`` (lines joined with
``\\n``, no final newline), ``_output_init_lease_file``,
``_get_dns_assignment``; ``neutron/plugins/ml2/extensions/
dns_integration.py _get_dns_names_for_port`` (the server's FQDN ends
with a dot; ``dns_name`` is honoured only when ``dns_domain`` is not
``openstacklocal``); neutron-lib ``DHCP_CONFIG_NOT_REQUIRED_OWNERS``
(DHCP ports are not in the hosts file) and
``DEVICE_ID_RESERVED_DHCP_PORT`` (an agent adopts a pre-created port
with device_id ``reserved_dhcp_port``).

Neutron assigns the ids of what is created (``id`` is not
``allow_post``), so bodies refer to a network by flatnet's (nova's)
network uuid and to a subnet by :func:`subnet_ref`; a loader maps them
to the ids Neutron returns. Assumed Neutron set-up: ML2 with a bridged
interface driver, the subnet isolated (its gateway is not a Neutron
router port) and ``enable_isolated_metadata``/``force_metadata`` off,
so no classless routes (option 121) are sent.
"""

from __future__ import annotations

import dataclasses
import re
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from typing import Any

import netaddr

from flatnet.model import Network
from flatnet.plan.dnsmasq import dhcp_address

DEFAULT_DNS_DOMAIN = "openstacklocal"
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclasses.dataclass(frozen=True)
class PortInput:
    """One allocated fixed IP of an instance (what becomes a port)."""

    network_id: int
    mac: str
    address: netaddr.IPAddress
    hostname: str
    instance_uuid: str
    host: str | None


@dataclasses.dataclass(frozen=True)
class NeutronSettings:
    """The Neutron options that decide what guests see (defaults are
    Neutron's own)."""

    physical_network: str = "physnet1"
    dns_domain: str = DEFAULT_DNS_DOMAIN  # neutron.conf [DEFAULT]
    dns_extension: bool = False  # ml2_conf.ini extension_drivers = dns
    dhcp_lease_duration: int = 86400  # neutron.conf [DEFAULT]
    dhcp_port_at_dhcp_server: bool = False
    network_dns_servers: bool = True  # subnet dns_nameservers = dns1, dns2
    mtu: int = 1500  # the network's mtu (global_physnet_mtu)


def preserving(dhcp_domain: str, dhcp_lease_time: int) -> NeutronSettings:
    """The settings under which guests see what flatnet gives them."""
    return NeutronSettings(
        dns_domain=dhcp_domain,
        dns_extension=True,
        dhcp_lease_duration=dhcp_lease_time,
        dhcp_port_at_dhcp_server=True,
        network_dns_servers=False,
    )


def subnet_ref(network: Network) -> str:
    """A stable stand-in for the subnet id Neutron will assign."""
    return str(uuidlib.uuid5(uuidlib.UUID(network.uuid), "ipv4-subnet"))


def dns_servers_of(network: Network) -> tuple[str, ...]:
    return tuple(str(a) for a in (network.dns1, network.dns2) if a)


def allocation_pools(
    network: Network, reserved: Iterable[netaddr.IPAddress]
) -> list[dict[str, str]]:
    """Ranges Neutron may hand out: the cidr without its network and
    broadcast address, gateway, DHCP address and reserved addresses."""
    cidr = netaddr.IPNetwork(network.cidr)
    pool = netaddr.IPSet([cidr]) - netaddr.IPSet(
        [cidr.network, cidr.broadcast, *reserved]
    )
    for taken in (network.gateway, network.dhcp_server):
        if taken is not None:
            pool.remove(taken)
    return [
        {"start": str(netaddr.IPAddress(r.first)),
         "end": str(netaddr.IPAddress(r.last))}
        for r in pool.iter_ipranges()
    ]  # fmt: skip


def dhcp_port_address(
    network: Network,
    ports: Sequence[PortInput],
    pools: Sequence[dict[str, str]],
    settings: NeutronSettings,
) -> netaddr.IPAddress:
    """The DHCP port's address: flatnet's DHCP address when preserving,
    else the first free pool address (what Neutron's IPAM gives it
    once the instance ports exist)."""
    if settings.dhcp_port_at_dhcp_server:
        return dhcp_address(network)
    used = {p.address for p in ports}
    for pool in pools:
        for address in netaddr.IPRange(pool["start"], pool["end"]):
            if address not in used:
                return netaddr.IPAddress(address)
    return dhcp_address(network)


def dns_name(port: PortInput, settings: NeutronSettings) -> str | None:
    """The port's ``dns_name`` when Neutron would honour it."""
    name = port.hostname.lower()
    if (
        settings.dns_extension
        and settings.dns_domain.rstrip(".") != DEFAULT_DNS_DOMAIN
        and _DNS_LABEL.match(name)
    ):
        return name
    return None


def host_names(port: PortInput, settings: NeutronSettings) -> tuple[str, str]:
    """(hostname, FQDN) as the DHCP agent writes them for ``port``."""
    domain = settings.dns_domain.rstrip(".")
    name = dns_name(port, settings)
    if name is None:
        name = "host-" + str(port.address).replace(".", "-")
    if settings.dns_extension:
        return name, f"{name}.{domain}." if domain else name
    return name, f"{name}.{domain}" if domain else name


# --- API request bodies ----------------------------------------------------
def network_body(
    network: Network, settings: NeutronSettings
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": network.label,
        "admin_state_up": True,
        "shared": network.project_id is None,
        "provider:network_type": "flat",
        "provider:physical_network": settings.physical_network,
        "mtu": settings.mtu,
    }
    if network.project_id is not None:
        body["project_id"] = network.project_id
    return {"network": body}


def subnet_body(
    network: Network, pools: list[dict[str, str]], settings: NeutronSettings
) -> dict[str, Any]:
    servers = dns_servers_of(network) if settings.network_dns_servers else ()
    gateway = str(network.gateway) if network.gateway else None
    return {
        "subnet": {
            "network_id": network.uuid,
            "name": f"{network.label}-v4",
            "ip_version": 4,
            "cidr": str(network.cidr),
            "gateway_ip": gateway,
            "allocation_pools": pools,
            "dns_nameservers": list(servers),
            "enable_dhcp": network.enable_dhcp,
        }
    }


def port_body(
    network: Network, port: PortInput, settings: NeutronSettings
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "network_id": network.uuid,
        "mac_address": port.mac,
        "fixed_ips": [
            {"subnet_id": subnet_ref(network), "ip_address": str(port.address)}
        ],
        "device_id": port.instance_uuid,
        "device_owner": "compute:nova",
        "binding:host_id": port.host,
        "admin_state_up": True,
    }
    name = dns_name(port, settings)
    if name is not None:
        body["dns_name"] = name
    return {"port": body}


def dhcp_port_body(
    network: Network, address: netaddr.IPAddress
) -> dict[str, Any]:
    return {
        "port": {
            "network_id": network.uuid,
            "device_owner": "network:dhcp",
            "device_id": "reserved_dhcp_port",
            "fixed_ips": [
                {"subnet_id": subnet_ref(network), "ip_address": str(address)}
            ],
            "admin_state_up": True,
        }
    }


# --- DHCP agent files --------------------------------------------------------
def host_file(ports: Sequence[PortInput], settings: NeutronSettings) -> str:
    """``<mac>,<fqdn>,<ip>`` per port (``_output_hosts_file``)."""
    return "".join(
        f"{p.mac},{host_names(p, settings)[1]},{p.address}\n"
        for p in _sorted(ports)
    )


def addn_hosts_file(
    ports: Sequence[PortInput], settings: NeutronSettings
) -> str:
    """``<ip>\\t<fqdn> <hostname>`` per port, FQDN first for PTR."""
    lines = []
    for port in _sorted(ports):
        name, fqdn = host_names(port, settings)
        lines.append(f"{port.address}\t{fqdn} {name}\n")
    return "".join(lines)


def opts_file(network: Network, settings: NeutronSettings) -> str:
    """``_generate_opts_per_subnet`` for an isolated IPv4 subnet."""
    tag = f"tag:subnet-{subnet_ref(network)}"
    options = []
    servers = dns_servers_of(network) if settings.network_dns_servers else ()
    if servers:
        options.append(f"{tag},option:dns-server,{','.join(servers)}")
    if network.gateway:
        options.append(f"{tag},option:router,{network.gateway}")
    else:
        options.append(f"{tag},option:router")
    return "\n".join(options)


def leases_file(ports: Sequence[PortInput]) -> str:
    """The seeded lease file: ``0 <mac> <ip> * *`` (0 = infinite)."""
    return "".join(f"0 {p.mac} {p.address} * *\n" for p in _sorted(ports))


def dnsmasq_argv(
    network: Network, confdir: str, settings: NeutronSettings
) -> list[str]:
    """``_build_cmdline_callback`` with the agent's defaults."""
    cidr = netaddr.IPNetwork(network.cidr)
    argv = [
        "dnsmasq", "--no-hosts", "--no-resolv",
        f"--pid-file={confdir}/pid",
        f"--dhcp-hostsfile={confdir}/host",
        f"--addn-hosts={confdir}/addn_hosts",
        f"--dhcp-optsfile={confdir}/opts",
        f"--dhcp-leasefile={confdir}/leases",
        "--dhcp-match=set:ipxe,175", "--dhcp-userclass=set:ipxe6,iPXE",
        "--local-service", "--bind-dynamic",
        f"--dhcp-range=set:subnet-{subnet_ref(network)},{cidr.network},"
        f"static,{cidr.netmask},{settings.dhcp_lease_duration}s",
    ]  # fmt: skip
    if settings.mtu > 0:
        argv.append(f"--dhcp-option-force=option:mtu,{settings.mtu}")
    argv += [f"--dhcp-lease-max={cidr.size}", "--conf-file=/dev/null"]
    if settings.dns_domain:
        argv.append(f"--domain={settings.dns_domain.rstrip('.')}")
    return argv


def _sorted(ports: Iterable[PortInput]) -> list[PortInput]:
    return sorted(ports, key=lambda p: int(p.address))


def neutron_options(settings: NeutronSettings) -> list[str]:
    """The Neutron configuration these exports assume."""
    options = [
        f"neutron.conf [DEFAULT] dns_domain = {settings.dns_domain} "
        "(read by the server and the DHCP agent; Neutron 10.0.0 removed "
        "dhcp_agent.ini dhcp_domain)",
        f"neutron.conf [DEFAULT] dhcp_lease_duration = "
        f"{settings.dhcp_lease_duration}",
        "dhcp_agent.ini [DEFAULT] enable_isolated_metadata = False, "
        "force_metadata = False (no option 121 routes)",
        f"ml2_conf.ini [ml2_type_flat] flat_networks = "
        f"{settings.physical_network}",
    ]
    if settings.dns_extension:
        options.append("ml2_conf.ini [ml2] extension_drivers = dns "
                       "(ports keep dns_name)")  # fmt: skip
    return options
