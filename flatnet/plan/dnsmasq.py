"""PURE: dnsmasq's argv (the file texts are in ``dnsmasq_files``).

Everything here is a function of its arguments (no I/O, no CONF, no
clock): :func:`dnsmasq_spec` turns a :class:`~flatnet.model.Network` and
the :class:`DhcpSettings` into a :class:`DnsmasqSpec`, and
:func:`dnsmasq_argv` renders nova's exact command line from it (nova
``linux_net.restart_dhcp``, as checked by nova's
``test_linux_net._test_dnsmasq_execute``). flatnet's two additions are
documented on :func:`dnsmasq_argv`; with both switched off the argv is
nova's byte for byte.

Anything that reaches a dnsmasq file is validated here a second time
(defence in depth): host names are reduced to a DNS label, so a newline,
comma, ``#`` or blank can never start a new line or field.
"""

from __future__ import annotations

import dataclasses
import json
import re

import netaddr

from flatnet import exception
from flatnet.model import Network
from flatnet.plan.dnsmasq_files import (
    HOSTNAME_MAX,
    addn_hosts_file,
    addn_hosts_line,
    dns_host_lines,
    host_line,
    host_lines,
    hosts_file,
    leases_text,
    mac_text,
    opts_file,
    opts_gateway,
    safe_hostname,
)

_DOMAIN = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]")
HOOK_SCRIPT_NAME = "flatnet-dhcp-script"
EVENTS_ENV = "FLATNET_EVENTS"


@dataclasses.dataclass(frozen=True, slots=True)
class DnsmasqPaths:
    """The per-network files under ``networks_path`` (nova
    ``linux_net._dhcp_file``), plus flatnet's own."""

    hosts: str  # nova-<br>.conf   --dhcp-hostsfile
    opts: str  # nova-<br>.opts   --dhcp-optsfile
    pid: str  # nova-<br>.pid    written by dnsmasq
    addn_hosts: str  # nova-<br>.hosts  --addn-hosts (multi_host)
    hostsdir: str  # nova-<br>.d      flatnet --dhcp-hostsdir
    events: str  # nova-<br>.events flatnet lease-event journal
    dns_hostsdir: str = ""  # nova-<br>.hd  flatnet --hostsdir
    init: str = ""  # nova-<br>.init  flatnet ``init`` snapshot (transient)
    lost: str = ""  # nova-<br>.lost  flatnet journal loss counters


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
        lost=f"{base}.lost",
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
    dhcp_shard_hosts: int = 600


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

    Builds a new tuple: nova's ``linux_net.restart_dhcp`` extended the
    ``dns_server`` option's own list, so duplicates accumulated.
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
    """nova's dnsmasq command line (``linux_net.restart_dhcp``), in
    nova's order.

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


__all__ = [
    "HOSTNAME_MAX",
    "addn_hosts_file",
    "addn_hosts_line",
    "dns_host_lines",
    "host_line",
    "host_lines",
    "hosts_file",
    "leases_text",
    "mac_text",
    "opts_file",
    "opts_gateway",
    "safe_hostname",
]
