"""iptables options (nova names) plus flatnet's backend choice."""

from __future__ import annotations

from oslo_config import cfg


def _iptables_opts() -> list[cfg.Opt]:
    """nova's iptables options."""
    return [
        cfg.StrOpt(
            "iptables_top_regex",
            default="",
            help="Foreign rules matching this stay at the top.",
        ),
        cfg.StrOpt(
            "iptables_bottom_regex",
            default="",
            help="Foreign rules matching this stay at the bottom.",
        ),
        cfg.StrOpt(
            "iptables_drop_action",
            default="DROP",
            help="Target used to drop packets (e.g. REJECT).",
        ),
        cfg.BoolOpt(
            "allow_same_net_traffic",
            default=True,
            help="Let instances of a network reach each other.",
        ),
        cfg.StrOpt(
            "firewall_driver",
            default="flatnet.firewall.IptablesFirewallDriver",
            help="Accepted for nova.conf parity.",
        ),
    ]


def _role_opts() -> list[cfg.Opt]:
    """flatnet's backend, roles and compute firewall."""
    return [
        cfg.StrOpt(
            "iptables_backend",
            default="auto",
            choices=["auto", "restore", "iptc"],
            help="flatnet: 'restore' drives whatever iptables the "
            "host has (nf_tables or legacy) through "
            "iptables-restore; 'iptc' uses python-iptables "
            "(legacy x_tables only); 'auto' picks iptc only "
            "when the host's iptables is legacy.",
        ),
        cfg.ListOpt(
            "flatnet_roles",
            default=["network", "compute"],
            help="flatnet: what flatnet-network does on this host. "
            "'network': bridges, dnsmasq and the host's NAT/filter "
            "rules of the networks; 'compute': the filters "
            "(iptables chains, ipsets, nwfilters) of the instances "
            "placed on this host. A compute host that is not the "
            "network host sets 'compute' alone.",
        ),
        cfg.BoolOpt(
            "firewall_remote_group_sets",
            default=True,
            help="flatnet: a rule whose source is a security group "
            "matches an ipset of the group's members (one set update "
            "per member change); False renders nova's one rule per "
            "member address.",
        ),
        cfg.BoolOpt(
            "use_nwfilter",
            default=False,
            help="flatnet: also define libvirt nwfilters (nova-base, "
            "nova-instance-<name>-<mac>...) for the instances of "
            "this host, through libvirtd (compute role).",
        ),
        cfg.StrOpt(
            "iptables_wrap_prefix",
            default="",
            help="flatnet: chain prefix; empty means the binary "
            "name as nova did (nova-network, nova-compute).",
        ),
    ]


def opts() -> list[cfg.Opt]:
    return [*_iptables_opts(), *_role_opts()]
