"""Network-host options (nova's [DEFAULT] names and defaults)."""

from __future__ import annotations

from oslo_config import cfg

from flatnet import host_identity


def _host_opts() -> list[cfg.Opt]:
    """This host."""
    return [
        cfg.StrOpt(
            "host",
            default=host_identity.hostname(),
            sample_default="<hostname>",
            help="Name of this host (nova's RPC server name).",
        ),
        cfg.StrOpt(
            "my_ip",
            default=host_identity.primary_ipv4(),
            sample_default="<host ipv4>",
            help="IPv4 address of this host.",
        ),
        cfg.StrOpt(
            "state_path",
            default="/var/lib/flatnet",
            help="Top-level directory for flatnet's state.",
        ),
    ]


def _bridge_opts() -> list[cfg.Opt]:
    """Flat networks and their bridge."""
    return [
        cfg.StrOpt(
            "flat_network_bridge",
            help="Bridge for new flat networks (e.g. br100).",
        ),
        cfg.StrOpt(
            "flat_interface",
            help="NIC enslaved to the bridge; overrides the "
            "network's bridge_interface.",
        ),
        cfg.BoolOpt(
            "flat_injected",
            default=False,
            help="Inject network config into the guest "
            "(FlatManager only; kept for nova.conf parity).",
        ),
        cfg.StrOpt(
            "flat_network_dns",
            default="8.8.4.4",
            help="Default dns1 of new networks.",
        ),
        cfg.BoolOpt(
            "multi_host",
            default=False,
            help="Default multi_host value of new networks.",
        ),
    ]


def _size_opts() -> list[cfg.Opt]:
    """Sizes of new networks and flags kept for nova.conf parity."""
    return [
        cfg.IntOpt(
            "network_size",
            default=256,
            min=4,
            help="Addresses per network when not given.",
        ),
        cfg.IntOpt(
            "max_network_size",
            default=65536,
            min=4,
            max=1 << 20,
            help="flatnet: largest network (and floating range) in "
            "addresses that network create accepts: 65536 is a /16. "
            "Every address is a database row and a possible dnsmasq "
            "host; at most 1048576 (/12).",
        ),
        cfg.IntOpt(
            "num_networks",
            default=1,
            min=1,
            help="Networks per create (flatnet creates one).",
        ),
        cfg.BoolOpt(
            "share_dhcp_address",
            default=False,
            help="Same DHCP address on every host (multi_host).",
        ),
        cfg.BoolOpt(
            "use_ipv6",
            default=False,
            help="IPv6 (not supported yet; must stay False).",
        ),
        cfg.BoolOpt(
            "fake_network",
            default=False,
            help="Accepted for nova.conf parity; flatnet "
            "injects fake executors in tests instead.",
        ),
    ]


def _flat_opts() -> list[cfg.Opt]:
    """Flat networks and their bridge."""
    return [*_bridge_opts(), *_size_opts()]


def _nat_opts() -> list[cfg.Opt]:
    """SNAT, metadata DNAT and forwarding on the network host."""
    return [
        cfg.StrOpt(
            "public_interface",
            default="eth0",
            help="Interface that floating IPs are bound to and "
            "that SNAT uses as -o.",
        ),
        cfg.StrOpt(
            "routing_source_ip",
            default="$my_ip",
            help="Source address for SNAT of instance traffic.",
        ),
        cfg.MultiStrOpt(
            "force_snat_range",
            default=[],
            help="Destination ranges to SNAT when the DHCP "
            "server is external.",
        ),
        cfg.ListOpt("dmz_cidr", default=[], help="Ranges exempt from SNAT."),
        cfg.StrOpt(
            "metadata_host",
            default="$my_ip",
            help="Metadata API address (DNAT target).",
        ),
        cfg.PortOpt("metadata_port", default=8775, help="Metadata API port."),
        cfg.MultiStrOpt(
            "forward_bridge_interface",
            default=["all"],
            help="Interfaces allowed to forward to/from the "
            "bridge; 'all' for any.",
        ),
    ]


def _address_opts() -> list[cfg.Opt]:
    """Fixed and floating addresses."""
    return [
        cfg.IntOpt(
            "fixed_ip_disassociate_timeout",
            default=600,
            min=0,
            help="Seconds before a deallocated, still leased "
            "fixed IP is disassociated.",
        ),
        cfg.IntOpt(
            "create_unique_mac_address_attempts",
            default=5,
            min=1,
            help="Tries to find an unused random MAC.",
        ),
        cfg.BoolOpt(
            "send_arp_for_ha",
            default=False,
            help="Send gratuitous ARP for gateway and floating addresses.",
        ),
        cfg.IntOpt(
            "send_arp_for_ha_count",
            default=3,
            min=0,
            help="Number of gratuitous ARPs.",
        ),
        cfg.StrOpt(
            "default_floating_pool",
            default="nova",
            help="Default floating IP pool.",
        ),
        cfg.BoolOpt(
            "auto_assign_floating_ip",
            default=False,
            help="Give every new instance a floating IP.",
        ),
    ]


def _loop_opts() -> list[cfg.Opt]:
    """flatnet-network's loop."""
    return [
        cfg.FloatOpt(
            "sync_interval",
            default=0.1,
            min=0.01,
            max=60.0,
            help="flatnet: seconds between checks of the "
            "database for changes to apply.",
        ),
        cfg.IntOpt(
            "periodic_interval",
            default=60,
            min=1,
            max=86400,
            help="Seconds between periodic tasks (stale fixed "
            "IPs, full resync).",
        ),
    ]


def opts() -> list[cfg.Opt]:
    """Every [DEFAULT] option of this area, in sample-file order."""
    return [
        *_host_opts(),
        *_flat_opts(),
        *_nat_opts(),
        *_address_opts(),
        *_loop_opts(),
    ]
