"""Builds the host-rules service from configuration (shared by
flatnet-network and flatnet-manage verify/repair)."""

from __future__ import annotations

from oslo_config import cfg

from flatnet.linux.address import FloatingAddresses
from flatnet.linux.iptables import select_backend
from flatnet.plan.host_rules import HostRulesSettings
from flatnet.service.host_rules import HostRules

NETWORK_PREFIX = "nova-network"


def host_rules_settings(conf: cfg.ConfigOpts) -> HostRulesSettings:
    """CONF -> the planner's settings; raises InvalidInput (bad option)."""
    return HostRulesSettings(
        wrap_prefix=conf.iptables_wrap_prefix or NETWORK_PREFIX,
        public_interface=conf.public_interface or None,
        routing_source_ip=conf.routing_source_ip or None,
        metadata_host=conf.metadata_host,
        metadata_port=conf.metadata_port,
        dmz_cidr=tuple(conf.dmz_cidr),
        force_snat_range=tuple(conf.force_snat_range),
        forward_bridge_interface=tuple(conf.forward_bridge_interface),
        iptables_drop_action=conf.iptables_drop_action,
        send_arp_for_ha=conf.send_arp_for_ha,
        send_arp_for_ha_count=conf.send_arp_for_ha_count,
    )


def build_host_rules(conf: cfg.ConfigOpts) -> HostRules:
    """HostRules with the configured iptables backend."""
    return HostRules(
        host_rules_settings(conf),
        select_backend(conf.iptables_backend),
        FloatingAddresses(),
    )
