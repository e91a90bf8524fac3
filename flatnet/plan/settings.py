"""The planners' settings, and the checks they run when built (PURE).

:class:`DhcpSettings` (:mod:`flatnet.plan.dnsmasq`),
:class:`FirewallSettings` (:mod:`flatnet.plan.firewall`) and
:class:`HostRulesSettings` (:mod:`flatnet.plan.host_rules`) live here,
with the validators they need (device names, IPv4 addresses, CIDRs,
ports; chain names from :mod:`flatnet.plan.iptables.names`), so that
building :class:`flatnet.settings.Settings`, which every flatnet command
does, loads no planner. The planners re-export their class.
"""

from __future__ import annotations

import dataclasses
import re

import netaddr

from flatnet import exception
from flatnet.plan.iptables.names import validate_chain_name, validate_prefix

#: Longest network device name the kernel accepts (IFNAMSIZ - 1).
IFNAMSIZ = 15

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def validate_device_name(name: str) -> str:
    """Return ``name`` if the kernel would accept it as a device name.

    Raises InvalidDeviceName if it is empty, longer than IFNAMSIZ (15),
    ``.``/``..`` or has characters outside ``[A-Za-z0-9_.-]``.
    """
    if not name or len(name) > IFNAMSIZ:
        raise exception.InvalidDeviceName(
            name=name, reason=f"must be 1-{IFNAMSIZ} characters"
        )
    if name in {".", ".."} or not _NAME_RE.fullmatch(name):
        raise exception.InvalidDeviceName(
            name=name, reason="only letters, digits, '_', '.' and '-'"
        )
    return name


def ipv4(value: object) -> netaddr.IPAddress:
    """``value`` as an IPv4 IPAddress; raises InvalidIpAddress."""
    if isinstance(value, netaddr.IPAddress) and value.version == 4:
        return value  # already canonical: the common, hot case
    try:
        addr = netaddr.IPAddress(str(value))
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise exception.InvalidIpAddress(
            address=value, reason="not an IP address"
        ) from exc
    if addr.version != 4 or str(value) != str(addr):
        raise exception.InvalidIpAddress(
            address=value, reason="only canonical IPv4 is supported"
        )
    return addr


def ipv4_cidr(value: object) -> netaddr.IPNetwork:
    """``value`` as an IPv4 IPNetwork (network address); InvalidCidr."""
    try:
        net = netaddr.IPNetwork(str(value))
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise exception.InvalidCidr(cidr=value, reason="not a CIDR") from exc
    if net.version != 4 or "/" not in str(value):
        raise exception.InvalidCidr(cidr=value, reason="IPv4 a.b.c.d/n only")
    return net.cidr


def validate_port(value: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (0 < value < 65536)
    ):
        raise exception.InvalidInput(reason=f"bad port {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class DhcpSettings:
    """The DHCP options the planners need (copied from CONF by cmd/)."""

    networks_path: str
    dhcpbridge: str
    dhcpbridge_flagfile: tuple[str, ...] = ()
    dnsmasq_config_file: str = ""
    dhcp_lease_time: int = 86400
    dhcp_domain: str = "novalocal"
    dns_server: tuple[str, ...] = ()
    use_network_dns_servers: bool = False
    use_single_default_gateway: bool = False
    share_dhcp_address: bool = False
    dhcp_hostsdir: bool = True
    dhcp_script_fast_path: bool = True
    dhcp_lease_hook: str = "sh"
    dhcp_shard_hosts: int = 600
    dhcp_max_shards: int = 20


#: nova's compute binary name, hence its chains' prefix
COMPUTE_PREFIX = "nova-compute"


@dataclasses.dataclass(frozen=True, slots=True)
class FirewallSettings:
    """How to render: the wrap prefix (nova's binary name), nova's
    ``allow_same_net_traffic``, and flatnet's ``remote_group_sets``
    (False: nova's one rule per member)."""

    prefix: str = COMPUTE_PREFIX
    allow_same_net_traffic: bool = True
    remote_group_sets: bool = True

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)


@dataclasses.dataclass(frozen=True, slots=True)
class HostRulesSettings:
    """The options the network host's rules depend on (nova names).

    Construction validates and normalises every field (strings are
    accepted for addresses) and raises an InvalidInput subclass.
    """

    wrap_prefix: str = "nova-network"
    public_interface: str | None = None
    routing_source_ip: netaddr.IPAddress | None = None
    metadata_host: netaddr.IPAddress = dataclasses.field(
        default_factory=lambda: netaddr.IPAddress("127.0.0.1")
    )
    metadata_port: int = 8775
    dmz_cidr: tuple[netaddr.IPNetwork, ...] = ()
    force_snat_range: tuple[netaddr.IPNetwork, ...] = ()
    forward_bridge_interface: tuple[str, ...] = ("all",)
    iptables_drop_action: str = "DROP"
    send_arp_for_ha: bool = False
    send_arp_for_ha_count: int = 3
    floating_ranges: tuple[netaddr.IPNetwork, ...] = ()

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        validate_prefix(self.wrap_prefix)
        if self.public_interface:
            validate_device_name(self.public_interface)
        else:
            put("public_interface", None)
        if self.routing_source_ip is not None:
            put("routing_source_ip", ipv4(self.routing_source_ip))
        put("metadata_host", ipv4(self.metadata_host))
        validate_port(self.metadata_port)
        for name in ("dmz_cidr", "force_snat_range", "floating_ranges"):
            put(name, tuple(ipv4_cidr(c) for c in getattr(self, name)))
        ifaces = tuple(self.forward_bridge_interface)
        if "all" not in ifaces:
            ifaces = tuple(validate_device_name(i) for i in ifaces)
        put("forward_bridge_interface", ifaces)
        validate_chain_name(self.iptables_drop_action)
        if self.send_arp_for_ha_count < 0:
            raise exception.InvalidInput(reason="send_arp_for_ha_count < 0")
