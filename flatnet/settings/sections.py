"""Builds each section of :class:`flatnet.settings.Settings` from the
options, validating every value on the way.

Each option is read exactly once, through :meth:`OptionReader.get` with
a check, so an error names the option and its file. The settings
classes of the other layers are built here and nowhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import netaddr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from flatnet import exception, hostname, ipam
from flatnet.plan.settings import (
    DhcpSettings,
    FirewallSettings,
    HostRulesSettings,
    validate_device_name,
)
from flatnet.service.settings import (
    DaemonTiming,
    DhcpTuning,
    IngestPolicy,
    ManagerSettings,
)
from flatnet.settings import DatabaseSettings, Settings
from flatnet.settings import metadata as metadata_section
from flatnet.settings.reader import OptionReader

#: nova's binary name, the chain prefix of the network host's rules.
NETWORK_PREFIX = "nova-network"
NOVA_HOOK = "nova-dhcpbridge"
#: what flatnet-network can do on a host ([DEFAULT] flatnet_roles)
ROLES = ("network", "compute")


# --- checks (raise InvalidInput or ValueError) ---------------------------
def _text(value: str) -> str:
    return hostname.check_text(value, "the value")


def _absolute(value: str) -> str:
    if not value.startswith("/") or not value.isprintable():
        raise exception.InvalidInput(reason="must be an absolute path")
    return os.path.normpath(value)


def _optional_absolute(value: str) -> str:
    return _absolute(value) if value else ""


def _absolute_list(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(_absolute(v) for v in values)


def _device(value: str | None) -> str | None:
    return validate_device_name(value) if value else None


def _ipv4(value: str) -> str:
    return str(ipam.parse_address(value))


def _optional_ipv4(value: str | None) -> str | None:
    return _ipv4(value) if value else None


def _ip_list(values: Sequence[str]) -> tuple[str, ...]:
    try:
        return tuple(str(netaddr.IPAddress(v)) for v in values)
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise exception.InvalidInput(reason="not an IP address") from exc


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise exception.InvalidInput(
            reason=f"not a regular expression: {exc}"
        ) from exc
    return value


def _false(value: bool) -> bool:
    if value:
        raise exception.InvalidInput(reason="IPv6 is not supported yet")
    return value


def _database_url(value: str) -> str:
    try:
        make_url(value)
    except ArgumentError as exc:
        raise exception.InvalidInput(
            reason="not a SQLAlchemy URL (e.g. sqlite:////path, "
            "postgresql+psycopg://user:pass@host/db)"
        ) from exc
    return value


def _rules_field(field: str) -> Callable[[Any], Any]:
    """Validates one HostRulesSettings field with the class itself."""

    def check(value: Any) -> Any:
        HostRulesSettings(**{field: value})
        return value

    return check


# --- sections ------------------------------------------------------------
def _parity(r: OptionReader) -> None:
    """Options accepted for nova.conf parity: type-checked only."""
    for name in (
        "flat_injected", "network_size", "num_networks", "fake_network",
        "firewall_driver",
        "auto_assign_floating_ip",
    ):  # fmt: skip
        r.get(name)
    r.get("use_ipv6", check=_false)
    r.get("my_ip", check=_ipv4)
    r.get("iptables_top_regex", check=_regex)
    r.get("iptables_bottom_regex", check=_regex)


def _database(r: OptionReader, networks_path: str) -> DatabaseSettings:
    url = r.get("connection", "database", check=_database_url)
    parsed = make_url(url)
    private = False
    if parsed.drivername.startswith("sqlite") and parsed.database:
        directory = os.path.dirname(os.path.abspath(parsed.database))
        inside = os.path.commonpath([directory, networks_path])
        private = inside != directory
    return DatabaseSettings(
        url=url,
        origin=r.origin("connection", "database"),
        busy_timeout=r.get("busy_timeout", "database"),
        private_directory=private,
    )


def _manager(r: OptionReader) -> ManagerSettings:
    return ManagerSettings(
        flat_network_bridge=r.get("flat_network_bridge", check=_device),
        flat_interface=r.get("flat_interface", check=_device),
        flat_network_dns=r.get("flat_network_dns", check=_optional_ipv4),
        multi_host=r.get("multi_host"),
        share_dhcp_address=r.get("share_dhcp_address"),
        create_unique_mac_address_attempts=r.get(
            "create_unique_mac_address_attempts"
        ),
        max_network_size=r.get("max_network_size"),
    )


def _hook(r: OptionReader) -> tuple[str, tuple[str, ...], list[str]]:
    """dhcpbridge and its flag files; nova's own hook is ignored unless
    use_nova_dhcpbridge (a nova.conf loaded as it is names it)."""
    bindir = r.get("bindir", check=_absolute)
    hook = r.get("dhcpbridge", check=_absolute)
    flagfiles = r.get("dhcpbridge_flagfile", check=_absolute_list)
    use_nova = r.get("use_nova_dhcpbridge")
    notes = []
    if os.path.basename(hook) == NOVA_HOOK and not use_nova:
        ours = os.path.join(bindir, "flatnet-dhcpbridge")
        notes.append(
            f"ignoring dhcpbridge = {hook} and dhcpbridge_flagfile from "
            f"{r.origin('dhcpbridge')}: nova's hook would write leases "
            f"into nova's database; using {ours} (set use_nova_dhcpbridge "
            "= True to keep nova's)"
        )
        hook, flagfiles = ours, ()
    return hook, flagfiles or r.source.files, notes


def _dhcp(r: OptionReader) -> tuple[DhcpSettings, list[str]]:
    hook, flagfiles, notes = _hook(r)
    dhcp = DhcpSettings(
        networks_path=r.get("networks_path", check=_absolute),
        dhcpbridge=hook,
        dhcpbridge_flagfile=flagfiles,
        dnsmasq_config_file=r.get(
            "dnsmasq_config_file", check=_optional_absolute
        ),
        dhcp_lease_time=r.get("dhcp_lease_time"),
        dhcp_domain=r.get("dhcp_domain", check=hostname.validate_domain),
        dns_server=r.get("dns_server", check=_ip_list),
        use_network_dns_servers=r.get("use_network_dns_servers"),
        use_single_default_gateway=r.get("use_single_default_gateway"),
        share_dhcp_address=r.get("share_dhcp_address"),
        dhcp_hostsdir=r.get("dhcp_hostsdir"),
        dhcp_script_fast_path=r.get("dhcp_script_fast_path"),
        dhcp_lease_hook=r.get("dhcp_lease_hook"),
        dhcp_shard_hosts=r.get("dhcp_shard_hosts"),
        dhcp_max_shards=r.get("dhcp_max_shards"),
    )
    return dhcp, notes


def _dhcp_tuning(r: OptionReader) -> DhcpTuning:
    batch = r.get("dhcp_hostsdir_batch")
    batch_max = r.get("dhcp_hostsdir_batch_max")
    if batch_max < batch:
        raise r.error(
            "dhcp_hostsdir_batch_max",
            "DEFAULT",
            f"must be at least dhcp_hostsdir_batch ({batch})",
        )
    return DhcpTuning(
        compact_files=r.get("dhcp_compact_files"),
        hostsdir_batch=batch,
        hostsdir_batch_max=batch_max,
        slow_batch=r.get("dhcp_slow_batch"),
        served_timeout=r.get("dhcp_served_timeout"),
        release_attempts=r.get("dhcp_release_attempts"),
        release_interval=r.get("dhcp_release_interval"),
        keeper_interval=r.get("dhcp_keeper_interval"),
        lease_refresh=r.get("dhcp_lease_refresh"),
    )


def _lease_journal(r: OptionReader) -> IngestPolicy:
    return IngestPolicy(
        rotate_bytes=r.get("lease_journal_rotate_bytes"),
        old_grace=r.get("lease_journal_old_grace"),
        max_bytes=r.get("lease_journal_max_bytes"),
    )


def _host_rules(r: OptionReader) -> HostRulesSettings:
    def get(option: str, field: str, convert: Callable[[Any], Any]) -> Any:
        return r.get(option, check=lambda v: _rules_field(field)(convert(v)))

    same = lambda v: v  # noqa: E731
    return HostRulesSettings(
        wrap_prefix=get(
            "iptables_wrap_prefix",
            "wrap_prefix",
            lambda v: v or NETWORK_PREFIX,
        ),
        public_interface=get(
            "public_interface", "public_interface", lambda v: v or None
        ),
        routing_source_ip=get(
            "routing_source_ip", "routing_source_ip", lambda v: v or None
        ),
        metadata_host=get("metadata_host", "metadata_host", same),
        metadata_port=get("metadata_port", "metadata_port", same),
        dmz_cidr=get("dmz_cidr", "dmz_cidr", tuple),
        force_snat_range=get("force_snat_range", "force_snat_range", tuple),
        forward_bridge_interface=get(
            "forward_bridge_interface", "forward_bridge_interface", tuple
        ),
        iptables_drop_action=get(
            "iptables_drop_action", "iptables_drop_action", same
        ),
        send_arp_for_ha=r.get("send_arp_for_ha"),
        send_arp_for_ha_count=r.get("send_arp_for_ha_count"),
    )


def _roles(values: Sequence[str]) -> tuple[str, ...]:
    roles = tuple(dict.fromkeys(v.strip() for v in values))
    unknown = [v for v in roles if v not in ROLES]
    if unknown or not roles:
        raise exception.InvalidInput(
            reason=f"roles must be one or both of {', '.join(ROLES)}"
        )
    return roles


def _firewall(r: OptionReader) -> FirewallSettings:
    return FirewallSettings(
        allow_same_net_traffic=r.get("allow_same_net_traffic"),
        remote_group_sets=r.get("firewall_remote_group_sets"),
    )


def _daemon(r: OptionReader) -> DaemonTiming:
    return DaemonTiming(
        sync_interval=r.get("sync_interval"),
        periodic_interval=float(r.get("periodic_interval")),
        disassociate_timeout=float(r.get("fixed_ip_disassociate_timeout")),
        max_backoff=r.get("max_backoff"),
        remind_every=r.get("trouble_remind_interval"),
    )


def build(r: OptionReader, with_origins: bool = False) -> Settings:
    """The Settings of the options ``r`` reads. Raises ConfigError."""
    _parity(r)
    host = r.get("host", check=_text)
    state_path = r.get("state_path", check=_absolute)  # before its users
    dhcp, notes = _dhcp(r)
    return Settings(
        source=r.source,
        host=host,
        state_path=state_path,
        database=_database(r, dhcp.networks_path),
        manager=_manager(r),
        default_floating_pool=r.get("default_floating_pool", check=_text),
        public_interface=r.get("public_interface", check=_device),
        flat_interface=r.get("flat_interface", check=_device),
        dhcp=dhcp,
        dhcp_tuning=_dhcp_tuning(r),
        lease_journal=_lease_journal(r),
        force_dhcp_release=r.get("force_dhcp_release"),
        host_rules=_host_rules(r),
        iptables_backend=r.get("iptables_backend"),
        daemon=_daemon(r),
        metadata=metadata_section.build(r),
        roles=r.get("flatnet_roles", check=_roles),
        firewall=_firewall(r),
        use_nwfilter=r.get("use_nwfilter"),
        notes=tuple(notes),
        options=tuple(r.origins()) if with_origins else (),
    )
