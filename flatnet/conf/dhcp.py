"""DHCP (dnsmasq and dhcpbridge) options, nova names and defaults."""

from __future__ import annotations

import os
import sys

from oslo_config import cfg


def _hook_opts() -> list[cfg.Opt]:
    """Where files live and the lease hook."""
    return [
        cfg.StrOpt(
            "bindir",
            default=os.path.join(sys.prefix, "bin"),
            sample_default="<sys.prefix>/bin",
            help="Directory of flatnet's executables.",
        ),
        cfg.StrOpt(
            "networks_path",
            default="$state_path/networks",
            help="Where nova-<bridge>.conf/.opts/.pid live.",
        ),
        cfg.StrOpt(
            "dhcpbridge",
            default="$bindir/flatnet-dhcpbridge",
            help="dnsmasq --dhcp-script (the lease hook), an absolute "
            "path. A nova-dhcpbridge (from a nova.conf) is ignored "
            "unless use_nova_dhcpbridge is set.",
        ),
        cfg.BoolOpt(
            "use_nova_dhcpbridge",
            default=False,
            help="flatnet: really use a dhcpbridge named "
            "nova-dhcpbridge (it writes leases into nova's database).",
        ),
        cfg.MultiStrOpt(
            "dhcpbridge_flagfile",
            default=[],
            sample_default="<the files flatnet-network read>",
            help="Config files for the hook (JSON list in "
            "dnsmasq's CONFIG_FILE environment); empty means the "
            "files flatnet-network itself was started with.",
        ),
        cfg.BoolOpt(
            "dhcp_script_fast_path",
            default=True,
            help="flatnet: point --dhcp-script at a generated "
            "POSIX sh hook that journals add/old/del events "
            "(about 1 ms each instead of a Python start).",
        ),
        cfg.StrOpt(
            "dhcp_lease_hook",
            default="sh",
            choices=["sh", "lua"],
            help="flatnet: sh keeps nova's argv (--dhcp-script, a fork "
            "per lease event); lua passes --dhcp-luascript (needs "
            "dnsmasq built with Lua, e.g. Debian dnsmasq-base-lua): the "
            "same journal with no fork per event, plus "
            "--dhcp-authoritative and --script-on-renewal, the daemon "
            "expiring leases dnsmasq no longer reports.",
        ),
    ]


def _dnsmasq_opts() -> list[cfg.Opt]:
    """What dnsmasq serves and how."""
    return [
        cfg.IntOpt(
            "dhcp_lease_time",
            default=86400,
            min=120,
            help="Lease time in seconds.",
        ),
        cfg.StrOpt(
            "dhcp_domain",
            default="novalocal",
            help="Domain of instance host names (--domain).",
        ),
        cfg.MultiStrOpt(
            "dns_server", default=[], help="Upstream DNS servers for dnsmasq."
        ),
        cfg.BoolOpt(
            "use_network_dns_servers",
            default=False,
            help="Also use each network's dns1/dns2 upstream.",
        ),
        cfg.StrOpt(
            "dnsmasq_config_file",
            default="",
            help="Value of dnsmasq --conf-file=.",
        ),
        cfg.BoolOpt(
            "use_single_default_gateway",
            default=False,
            help="Only an instance's first NIC gets a default route.",
        ),
        cfg.BoolOpt(
            "force_dhcp_release",
            default=True,
            help="Release the lease when an IP is deallocated.",
        ),
        cfg.BoolOpt(
            "dhcp_hostsdir",
            default=True,
            help="flatnet: also pass --addn-hosts (every network), "
            "--hostsdir and --dhcp-hostsdir, so that new hosts go live "
            "by inotify without a reload and every host name is a hosts "
            "entry (keeps dnsmasq's per-lease DNS work linear).",
        ),
    ]


def _shard_opts() -> list[cfg.Opt]:
    """Large networks: several dnsmasq (shards)."""
    return [
        cfg.IntOpt(
            "dhcp_shard_hosts",
            default=600,
            min=1,
            help="flatnet: a network with more hosts than this is "
            "served by several dnsmasq (shards), each in a network "
            "namespace of its own with a reserved address of the "
            "network, at most this many hosts each; names are then "
            "served by a DNS-only dnsmasq on the gateway. Smaller "
            "networks keep nova's single dnsmasq.",
        ),
        cfg.IntOpt(
            "dhcp_max_shards",
            default=20,
            min=1,
            help="flatnet: at most this many shards per network; past "
            "dhcp_shard_hosts x dhcp_max_shards hosts the shards grow "
            "instead. Every DHCP broadcast is flooded to every shard's "
            "bridge port (a cost per shard on each packet): at 50,000 "
            "hosts 80 shards of 625 made 786 handshakes/s, 20 of 2,500 "
            "3,589/s (doc/benchmarks.md).",
        ),
    ]


def opts() -> list[cfg.Opt]:
    """Every DHCP option, in sample-file order."""
    return [*_hook_opts(), *_dnsmasq_opts(), *_shard_opts()]
