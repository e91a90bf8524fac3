"""Pure IPv4 address management for flat networks (no I/O, no CONF).

:func:`network_layout` turns operator input into a :class:`NetworkLayout`
with nova-network's FlatDHCP rules (nova ``_do_create_networks``):

* gateway = the given one, else the first host address;
* dhcp_server = the given one, else the gateway;
* dhcp_start = the next address after the gateway (skipping dhcp_server);
* the rows of the fixed range (``fixed_cidr`` or the whole cidr) are
  reserved by *index* within that range: index 0 (network) and the last
  one (broadcast), plus the gateway and the DHCP server address.

``dhcp_start`` does not limit allocation; only the reserved flag does.
:func:`choose_free_address` is the pool rule of ``fixed_ip_associate_pool``
for callers that hold the candidates in memory.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Iterator, Mapping

import netaddr

from flatnet import exception

#: Smallest network: network, gateway/dhcp, one host, broadcast.
MIN_PREFIXLEN_BITS = 30
#: Largest network by default ([DEFAULT] max_network_size): a /16. Every
#: address is a fixed_ips row (nova's layout) and a possible dnsmasq host.
MAX_NETWORK_SIZE = 65536
#: nova's ``_bottom_reserved_ips`` / ``_top_reserved_ips`` for FlatDHCP.
BOTTOM_RESERVED = 1
TOP_RESERVED = 1


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkLayout:
    """The computed addressing of one flat IPv4 network.

    ``reserved`` holds every address of ``fixed_cidr`` that is never handed
    out; ``allocatable`` is how many addresses of it can be.
    """

    cidr: netaddr.IPNetwork
    netmask: netaddr.IPAddress
    broadcast: netaddr.IPAddress
    gateway: netaddr.IPAddress
    dhcp_server: netaddr.IPAddress
    dhcp_start: netaddr.IPAddress
    fixed_cidr: netaddr.IPNetwork
    reserved: frozenset[netaddr.IPAddress]

    @property
    def allocatable(self) -> int:
        return int(self.fixed_cidr.size) - len(self.reserved)

    def is_reserved(self, address: netaddr.IPAddress) -> bool:
        return address in self.reserved


def parse_cidr(text: str) -> netaddr.IPNetwork:
    """Parse an IPv4 CIDR such as ``10.0.0.0/24``.

    Raises InvalidCidr when it is not IPv4 a.b.c.d/n with no host bits.
    """
    if not isinstance(text, str) or "/" not in text:
        raise exception.InvalidCidr(cidr=text, reason="expected a.b.c.d/n")
    try:
        net = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as exc:
        raise exception.InvalidCidr(cidr=text, reason=str(exc)) from exc
    return netaddr.IPNetwork(str(net))


def parse_address(text: str) -> netaddr.IPAddress:
    """Parse a dotted-quad IPv4 address; raises InvalidIpAddress."""
    try:
        addr = ipaddress.IPv4Address(str(text).strip())
    except ValueError as exc:
        raise exception.InvalidIpAddress(
            address=text, reason="not an IPv4 address"
        ) from exc
    return netaddr.IPAddress(str(addr))


def check_overlap(
    cidr: netaddr.IPNetwork, existing: Iterable[netaddr.IPNetwork]
) -> None:
    """Raise CidrConflict if ``cidr`` overlaps any of ``existing``."""
    for other in existing:
        if cidr.first <= other.last and other.first <= cidr.last:
            raise exception.CidrConflict(cidr=cidr, other=other)


def _inside(
    address: netaddr.IPAddress, cidr: netaddr.IPNetwork, what: str
) -> None:
    if address not in cidr:
        raise exception.AddressOutOfRange(address=address, network=cidr)
    if address in (cidr.network, cidr.broadcast):
        raise exception.InvalidIpAddress(
            address=str(address),
            reason=f"the {what} cannot be the network or broadcast "
            f"address of {cidr}",
        )


def _fixed_range(
    cidr: netaddr.IPNetwork, fixed_cidr: str | None
) -> netaddr.IPNetwork:
    if fixed_cidr is None:
        return cidr
    fixed = parse_cidr(fixed_cidr)
    if fixed not in cidr:
        raise exception.AddressOutOfRange(address=fixed, network=cidr)
    if fixed.prefixlen > MIN_PREFIXLEN_BITS:
        raise exception.InvalidCidr(
            cidr=fixed_cidr, reason="fixed range is smaller than /30"
        )
    return fixed


def check_size(
    cidr: str, net: netaddr.IPNetwork, max_size: int, what: str
) -> None:
    """Raise InvalidCidr if ``net`` has more than ``max_size`` addresses
    (checked before anything is built for it)."""
    if net.size > max_size:
        raise exception.InvalidCidr(
            cidr=cidr,
            reason=f"{what} has {net.size:,} addresses, more than "
            f"max_network_size ({max_size:,})",
        )


def network_layout(  # noqa: PLR0913 - keyword-only operator input
    cidr: str,
    *,
    gateway: str | None = None,
    dhcp_server: str | None = None,
    fixed_cidr: str | None = None,
    existing: Iterable[netaddr.IPNetwork] = (),
    max_size: int = MAX_NETWORK_SIZE,
) -> NetworkLayout:
    """Validate operator input and compute the layout (nova FlatDHCP).

    Raises InvalidCidr (syntax, IPv6, smaller than /30, more than
    ``max_size`` addresses), CidrConflict (overlaps one of
    ``existing``), AddressOutOfRange / InvalidIpAddress (gateway,
    dhcp_server or fixed_cidr not inside the network).
    """
    net = parse_cidr(cidr)
    if net.prefixlen > MIN_PREFIXLEN_BITS:
        raise exception.InvalidCidr(
            cidr=cidr, reason="a network needs at least 4 addresses (/30)"
        )
    check_size(cidr, net, max_size, "the network")
    check_overlap(net, existing)
    # NOTE: netaddr's IPAddress "+=" mutates in place; only use "+".
    current = netaddr.IPAddress(net.first + 1)
    if gateway is not None:
        gw = parse_address(gateway)
        _inside(gw, net, "gateway")
    else:
        gw = current
        current = current + 1
    dhcp = parse_address(dhcp_server) if dhcp_server is not None else gw
    _inside(dhcp, net, "DHCP server")
    dhcp_start = current
    if dhcp_start == dhcp:
        dhcp_start = current + 1
    fixed = _fixed_range(net, fixed_cidr)
    size = int(fixed.size)
    reserved = {fixed[i] for i in range(BOTTOM_RESERVED)}
    reserved |= {fixed[size - 1 - i] for i in range(TOP_RESERVED)}
    reserved |= {a for a in (gw, dhcp) if a in fixed}
    return NetworkLayout(
        cidr=net,
        netmask=net.netmask,
        broadcast=net.broadcast,
        gateway=gw,
        dhcp_server=dhcp,
        dhcp_start=dhcp_start,
        fixed_cidr=fixed,
        reserved=frozenset(reserved),
    )


def fixed_ip_rows(layout: NetworkLayout) -> Iterator[tuple[str, bool]]:
    """Yield ``(address, reserved)`` for every row of the fixed range.

    Uses integer arithmetic so that a /16 (65,536 rows) takes
    milliseconds.
    """
    first = int(layout.fixed_cidr.first)
    reserved = {int(a) for a in layout.reserved}
    for value in range(first, int(layout.fixed_cidr.last) + 1):
        text = (
            f"{value >> 24}.{(value >> 16) & 255}."
            f"{(value >> 8) & 255}.{value & 255}"
        )
        yield text, value in reserved


def choose_free_address(
    layout: NetworkLayout,
    used: Iterable[netaddr.IPAddress],
    last_used: Mapping[netaddr.IPAddress, float] | None = None,
) -> netaddr.IPAddress:
    """Pick the address nova's pool query would pick, from memory.

    Never returns a reserved, network, broadcast or ``used`` address.
    Never-used addresses (absent from ``last_used``) come first in address
    order, then the least recently used. Raises NoMoreFixedIps.
    """
    taken = {int(a) for a in used} | {int(a) for a in layout.reserved}
    times = last_used or {}
    best: tuple[int, float, int] | None = None
    for value in range(layout.fixed_cidr.first, layout.fixed_cidr.last + 1):
        if value in taken:
            continue
        addr = netaddr.IPAddress(value)
        key = (1, times[addr], value) if addr in times else (0, 0.0, value)
        if best is None or key < best:
            best = key
            if key[0] == 0:
                break
    if best is None:
        raise exception.NoMoreFixedIps(network=layout.cidr)
    return netaddr.IPAddress(best[2])


def floating_addresses(
    text: str, max_size: int = MAX_NETWORK_SIZE
) -> list[netaddr.IPAddress]:
    """nova-manage's ``address_to_hosts``: one address as it is, or a
    CIDR's usable hosts (no network or broadcast address).

    Raises InvalidIpAddress / InvalidCidr; a CIDR smaller than 4
    addresses (/31, /32) or larger than ``max_size`` is InvalidCidr.
    """
    text = text.strip()
    if "/" not in text:
        return [parse_address(text)]
    network = parse_cidr(text)
    if network.size < 4:
        raise exception.InvalidCidr(
            cidr=text, reason="a floating range needs at least /30"
        )
    check_size(text, network, max_size, "the range")
    return list(network.iter_hosts())
