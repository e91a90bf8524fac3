"""PURE: dnsmasq's argv and the text of its hosts, opts and leases files.

Everything here is a function of its arguments (no I/O, no CONF, no
clock): :func:`dnsmasq_spec` turns a :class:`~flatnet.model.Network` and
the :class:`DhcpSettings` into a :class:`DnsmasqSpec`, and
:func:`dnsmasq_argv` renders nova's exact command line from it (nova
§3.5/§8.2). flatnet's two additions are documented on
:func:`dnsmasq_argv`; with both switched off the argv is nova's byte for
byte.

Anything that reaches a dnsmasq file is validated here a second time
(defence in depth): host names are reduced to a DNS label, so a newline,
comma, ``#`` or blank can never start a new line or field.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection, Iterable, Sequence

import netaddr

from flatnet import exception
from flatnet.model import HostEntry, Lease, Network

# NOTE: dnsmasq and DNS limit a label to 63 octets; nova LP#1238910 keeps
# the first two and the last 60 characters of a longer name.
HOSTNAME_MAX = 63
_HOST_BAD = re.compile(r"[^A-Za-z0-9_-]")
_DOMAIN = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]")
# One dnsmasq lease-file line as ``init`` prints it (and the sh hook
# copies verbatim from the snapshot): nothing else may get through.
_LEASE_LINE = re.compile(
    r"[0-9]{1,20} [0-9a-f]{2}(?::[0-9a-f]{2}){5} [0-9]{1,3}(?:\.[0-9]{1,3}){3}"
    r" (?:\*|[A-Za-z0-9_-]{1,63}) \*"
)
HOOK_SCRIPT_NAME = "flatnet-dhcp-script"
EVENTS_ENV = "FLATNET_EVENTS"


@dataclasses.dataclass(frozen=True, slots=True)
class DnsmasqPaths:
    """The per-network files under ``networks_path`` (nova §3.3)."""

    hosts: str  # nova-<br>.conf   --dhcp-hostsfile
    opts: str  # nova-<br>.opts   --dhcp-optsfile
    pid: str  # nova-<br>.pid    written by dnsmasq
    addn_hosts: str  # nova-<br>.hosts  --addn-hosts (multi_host)
    hostsdir: str  # nova-<br>.d      flatnet --dhcp-hostsdir
    events: str  # nova-<br>.events flatnet lease-event journal
    dns_hostsdir: str = ""  # nova-<br>.hd  flatnet --hostsdir
    init: str = ""  # nova-<br>.init  flatnet ``init`` snapshot (transient)


def _under(networks_path: str, name: str) -> str:
    if not networks_path.startswith("/"):
        raise exception.ConfigError(
            reason=f"networks_path {networks_path!r} must be absolute"
        )
    return networks_path.rstrip("/") + "/" + name


def dnsmasq_paths(networks_path: str, bridge: str) -> DnsmasqPaths:
    """Absolute paths of ``bridge``'s files (nova's ``_dhcp_file``).

    Raises ConfigError if ``networks_path`` is not absolute.
    """
    base = _under(networks_path, f"nova-{bridge}")
    return DnsmasqPaths(
        hosts=f"{base}.conf",
        opts=f"{base}.opts",
        pid=f"{base}.pid",
        addn_hosts=f"{base}.hosts",
        hostsdir=f"{base}.d",
        events=f"{base}.events",
        dns_hostsdir=f"{base}.hd",
        init=f"{base}.init",
    )


def hook_script_path(networks_path: str) -> str:
    """Where the generated fast-path sh hook lives."""
    return _under(networks_path, HOOK_SCRIPT_NAME)


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


@dataclasses.dataclass(frozen=True, slots=True)
class DnsmasqSpec:
    """Everything dnsmasq's command line depends on, validated."""

    network_id: str
    label: str
    bridge: str
    listen: netaddr.IPAddress
    dhcp_start: netaddr.IPAddress
    netmask: netaddr.IPAddress
    lease_seconds: int
    lease_max: int
    paths: DnsmasqPaths
    script: str
    flagfiles: tuple[str, ...] = ()
    config_file: str = ""
    domain: str = ""
    multi_host: bool = False
    dns_servers: tuple[str, ...] = ()
    hostsdir: bool = False
    events_env: bool = False


def dhcp_address(network: Network) -> netaddr.IPAddress:
    """The address dnsmasq listens on: dhcp_server, else the gateway.

    Raises InvalidInput if the network has neither.
    """
    address = network.dhcp_server or network.gateway
    if address is None:
        raise exception.InvalidInput(
            reason=f"network {network.id} has no dhcp_server or gateway"
        )
    return netaddr.IPAddress(address)


def dns_servers(network: Network, settings: DhcpSettings) -> tuple[str, ...]:
    """Upstream servers: CONF.dns_server, then dns1/dns2 when
    use_network_dns_servers; validated and de-duplicated in order.

    Fixes nova §9.7: builds a new tuple, never extends the option's list.
    Raises ConfigError on a value that is not an IP address.
    """
    wanted: list[str] = list(settings.dns_server)
    if settings.use_network_dns_servers:
        wanted += [str(d) for d in (network.dns1, network.dns2) if d]
    result: list[str] = []
    for server in wanted:
        try:
            text = str(netaddr.IPAddress(server))
        except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
            raise exception.ConfigError(
                reason=f"dns_server {server!r} is not an IP address"
            ) from exc
        if text not in result:
            result.append(text)
    return tuple(result)


def _checked_domain(domain: str) -> str:
    if domain and not _DOMAIN.match(domain):
        raise exception.ConfigError(
            reason=f"dhcp_domain {domain!r} is not a DNS domain name"
        )
    return domain


def dnsmasq_spec(network: Network, settings: DhcpSettings) -> DnsmasqSpec:
    """The spec of ``network``'s dnsmasq under ``settings``.

    Raises ConfigError (bad domain/DNS server) or InvalidInput (network
    without a DHCP address or dhcp_start).
    """
    if network.dhcp_start is None:
        raise exception.InvalidInput(
            reason=f"network {network.id} has no dhcp_start"
        )
    script = settings.dhcpbridge
    if settings.dhcp_script_fast_path:
        script = hook_script_path(settings.networks_path)
    return DnsmasqSpec(
        network_id=str(network.id),
        label=network.label,
        bridge=network.bridge,
        listen=dhcp_address(network),
        dhcp_start=netaddr.IPAddress(network.dhcp_start),
        netmask=netaddr.IPAddress(network.netmask),
        lease_seconds=settings.dhcp_lease_time,
        lease_max=netaddr.IPNetwork(network.cidr).size,
        paths=dnsmasq_paths(settings.networks_path, network.bridge),
        script=script,
        flagfiles=tuple(settings.dhcpbridge_flagfile),
        config_file=settings.dnsmasq_config_file,
        domain=_checked_domain(settings.dhcp_domain),
        multi_host=network.multi_host,
        dns_servers=dns_servers(network, settings),
        hostsdir=settings.dhcp_hostsdir,
        events_env=settings.dhcp_script_fast_path,
    )


def range_tag(label: str) -> str:
    """``label`` as a dnsmasq tag: characters outside [A-Za-z0-9_.-]
    become ``_`` so a comma cannot split the --dhcp-range value."""
    return _TAG_BAD.sub("_", label) or "net"


def dnsmasq_argv(spec: DnsmasqSpec) -> list[str]:
    """nova's dnsmasq command line (§3.5), in nova's order.

    flatnet additions, both off gives nova's argv byte for byte:

    * ``events_env`` (dhcp_script_fast_path): ``FLATNET_EVENTS=<journal>``
      is added to the ``env`` prefix after ``NETWORK_ID=`` and
      ``--dhcp-script=`` names the generated sh hook (``spec.script``);
    * ``hostsdir`` (dhcp_hostsdir): ``--dhcp-hostsdir=<np>/nova-<br>.d``
      is appended as the very last argument, preceded by
      ``--addn-hosts=<np>/nova-<br>.hosts`` (unless multi_host already
      passed it) and ``--hostsdir=<np>/nova-<br>.hd``: every host name
      is then a hosts entry too, see :func:`addn_hosts_file`.
    """
    env = [
        "env",
        f"CONFIG_FILE={json.dumps(list(spec.flagfiles))}",
        f"NETWORK_ID={spec.network_id}",
    ]
    if spec.events_env:
        env.append(f"{EVENTS_ENV}={spec.paths.events}")
    argv = [
        *env,
        "dnsmasq",
        "--strict-order",
        "--bind-interfaces",
        f"--conf-file={spec.config_file}",
        f"--pid-file={spec.paths.pid}",
        f"--dhcp-optsfile={spec.paths.opts}",
        f"--listen-address={spec.listen}",
        "--except-interface=lo",
        f"--dhcp-range=set:{range_tag(spec.label)},{spec.dhcp_start},"
        f"static,{spec.netmask},{spec.lease_seconds}s",
        f"--dhcp-lease-max={spec.lease_max}",
        f"--dhcp-hostsfile={spec.paths.hosts}",
        f"--dhcp-script={spec.script}",
        "--no-hosts",
        "--leasefile-ro",
    ]
    if spec.domain:
        argv.append(f"--domain={spec.domain}")
    if spec.multi_host:
        argv.append(f"--addn-hosts={spec.paths.addn_hosts}")
    if spec.dns_servers:
        argv.append("--no-resolv")
        argv += [f"--server={server}" for server in spec.dns_servers]
    return argv + _hostsdir_args(spec)


def _hostsdir_args(spec: DnsmasqSpec) -> list[str]:
    """flatnet's dhcp_hostsdir extras (none when it is off)."""
    if not spec.hostsdir:
        return []
    extra = (
        [] if spec.multi_host else [f"--addn-hosts={spec.paths.addn_hosts}"]
    )
    return [
        *extra,
        f"--hostsdir={spec.paths.dns_hostsdir}",
        f"--dhcp-hostsdir={spec.paths.hostsdir}",
    ]


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
    """``fa:16:3e:00:00:01``: lower case, colon separated."""
    return str(netaddr.EUI(mac, dialect=netaddr.mac_unix_expanded)).lower()


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
