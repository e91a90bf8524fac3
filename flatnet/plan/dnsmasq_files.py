"""PURE: the text of dnsmasq's hosts, opts, addn-hosts and leases files.

Part of :mod:`flatnet.plan.dnsmasq` (which re-exports these names).
Anything that reaches a dnsmasq file is validated here a second time
(defence in depth): host names are reduced to a DNS label, so a newline,
comma, ``#`` or blank can never start a new line or field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Sequence

import netaddr

from flatnet import exception
from flatnet.model import HostEntry, Lease, Network

# NOTE: dnsmasq and DNS limit a label to 63 octets; nova LP#1238910 keeps
# the first two and the last 60 characters of a longer name.
HOSTNAME_MAX = 63
_HOST_BAD = re.compile(r"[^A-Za-z0-9_-]")
# One dnsmasq lease-file line as ``init`` prints it (and the sh hook
# copies verbatim from the snapshot): nothing else may get through.
_LEASE_LINE = re.compile(
    r"[0-9]{1,20} [0-9a-f]{2}(?::[0-9a-f]{2}){5} [0-9]{1,3}(?:\.[0-9]{1,3}){3}"
    r" (?:\*|[A-Za-z0-9_-]{1,63}) \*"
)


def safe_hostname(hostname: str | None, address: netaddr.IPAddress) -> str:
    """``hostname`` reduced to one DNS label of at most 63 characters.

    Characters outside [A-Za-z0-9_-] become ``-``; leading/trailing
    ``-``/``_`` are dropped; an empty result becomes ``host-<a-b-c-d>``
    (Neutron's fallback). A longer name is cut as nova does
    (``name[:2] + '-' + name[-60:]``).
    """
    name = _HOST_BAD.sub("-", hostname or "").strip("-_")
    if not name:
        name = "host-" + str(address).replace(".", "-")
    if len(name) > HOSTNAME_MAX:
        name = name[:2] + "-" + name[-60:]
    return name


def mac_text(mac: netaddr.EUI) -> str:
    """``fa:16:3e:00:00:01``: lower case, colon separated. An EUI-48 is
    formatted from its integer (netaddr's dialect formatting was half of
    a 10,000-host sharded sync)."""
    if mac.version != 48:
        return str(netaddr.EUI(mac, dialect=netaddr.mac_unix_expanded)).lower()
    return _eui48_text(int(mac))


@functools.lru_cache(maxsize=1 << 17)
def _eui48_text(value: int) -> str:
    """An EUI-48's text (memoised: a sync renders each MAC ~10 times)."""
    text = f"{value:012x}"
    return ":".join(text[i : i + 2] for i in range(0, 12, 2))


def _unique_by_mac(entries: Iterable[HostEntry]) -> list[HostEntry]:
    """Sorted by address; only the first address of each MAC (nova)."""
    seen: set[str] = set()
    result: list[HostEntry] = []
    for entry in sorted(entries, key=lambda e: int(e.address)):
        key = mac_text(entry.mac)
        if key not in seen:
            seen.add(key)
            result.append(entry)
    return result


def host_line(entry: HostEntry, domain: str, tag_vif: bool = False) -> str:
    """One dhcp-hostsfile line (nova ``_host_dhcp``), no newline."""
    name = safe_hostname(entry.hostname, entry.address)
    line = f"{mac_text(entry.mac)},{name}.{domain},{entry.address}"
    if tag_vif and entry.vif_id is not None:
        line += f",net:NW-{int(entry.vif_id)}"
    return line


def host_lines(
    entries: Iterable[HostEntry], domain: str, tag_vif: bool = False
) -> dict[str, str]:
    """MAC text -> hosts line for each (first) entry of a MAC."""
    return {
        mac_text(e.mac): host_line(e, domain, tag_vif)
        for e in _unique_by_mac(entries)
    }


def hosts_file(
    entries: Iterable[HostEntry], domain: str, tag_vif: bool = False
) -> str:
    """The --dhcp-hostsfile text, sorted by address, one line per MAC."""
    return "".join(
        host_line(e, domain, tag_vif) + "\n" for e in _unique_by_mac(entries)
    )


def opts_gateway(
    network: Network, share_dhcp_address: bool
) -> netaddr.IPAddress | None:
    """Router to announce: the per-host DHCP address on multi_host
    networks that do not share it, else the network's gateway."""
    if network.multi_host and not (
        network.share_address or share_dhcp_address
    ):
        return network.dhcp_server
    return network.gateway


def opts_file(
    gateway: netaddr.IPAddress | None,
    entries: Sequence[HostEntry] = (),
    single_default_gateway: bool = False,
    default_route_vifs: Collection[int] | None = None,
) -> str:
    """The --dhcp-optsfile text (nova ``get_dhcp_opts``).

    Without ``single_default_gateway``: ``3,<gateway>`` (``3`` without a
    gateway). With it: ``NW-<vif>,3,<gateway>`` for a VIF in
    ``default_route_vifs`` (None: every VIF) else ``NW-<vif>,3``.
    """
    router = "3" if gateway is None else f"3,{gateway}"
    if not single_default_gateway:
        return router + "\n"
    lines = []
    for entry in entries:
        if entry.vif_id is None:
            continue
        vif = int(entry.vif_id)
        if default_route_vifs is None or vif in default_route_vifs:
            lines.append(f"NW-{vif},{router}")
        else:
            lines.append(f"NW-{vif},3")
    return "".join(line + "\n" for line in lines)


# NOTE: dnsmasq 2.90 rebuilds the DNS records of ALL leases after every
# lease change (lease_update_dns), and a lease name that is not also a
# hosts entry costs a linear scan of the whole cache (cache_add_dhcp_entry
# -> cache_find_by_addr): O(leases^2) per DHCPACK. A name found in a hosts
# file with the same address returns early. So with dhcp_hostsdir every
# host's FQDN and short name are hosts entries (measured, doc/dhcp.md).
def addn_hosts_line(entry: HostEntry, domain: str, short: bool) -> str:
    """``<ip>\t<name>.<domain>`` (nova), plus ``\t<name>`` if ``short``."""
    name = safe_hostname(entry.hostname, entry.address)
    if short and not domain:
        return f"{entry.address}\t{name}"
    line = f"{entry.address}\t{name}.{domain}"
    return line + f"\t{name}" if short else line


def dns_host_lines(
    entries: Iterable[HostEntry], domain: str
) -> dict[str, str]:
    """MAC text -> short-form hosts line, for the same (first) entry of
    each MAC as :func:`host_lines`."""
    return {
        mac_text(e.mac): addn_hosts_line(e, domain, True)
        for e in _unique_by_mac(entries)
    }


def addn_hosts_file(
    entries: Iterable[HostEntry], domain: str, short: bool = False
) -> str:
    """The --addn-hosts text: ``<ip>\t<name>.<domain>`` per address
    (nova); with ``short`` each line also carries the bare name."""
    return "".join(
        addn_hosts_line(e, domain, short) + "\n"
        for e in sorted(entries, key=lambda e: int(e.address))
    )


def leases_text(leases: Iterable[Lease], now: int, lease_time: int) -> str:
    """dhcpbridge ``init`` output: ``<expiry> <mac> <ip> <name|*> *``.

    One line per lease, sorted by address (nova ``get_dhcp_leases``).
    Every line is checked against the lease-file shape (the sh hook
    prints a snapshot of this text verbatim). Raises InvalidInput if a
    line does not match (cannot happen with valid leases).
    """
    lines = []
    for lease in sorted(leases, key=lambda x: int(x.address)):
        name = "*"
        if lease.hostname:
            name = safe_hostname(lease.hostname, lease.address)
        line = (
            f"{now + lease_time} {mac_text(lease.mac)} {lease.address} "
            f"{name} *"
        )
        if not _LEASE_LINE.fullmatch(line):
            raise exception.InvalidInput(
                reason=f"bad init line {line[:100]!r}"
            )
        lines.append(line)
    return "".join(line + "\n" for line in lines)
