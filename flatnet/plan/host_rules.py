"""The network host's iptables rules and addresses, computed from data.

PURE. Rule text is nova-network's, literally (nova linux_net:
``init_host``, ``add_snat_rule``, ``metadata_forward``,
``floating_forward_rules``, ``get_gateway_rules``,
``_add_dnsmasq_accept_rules``, ``_add_dhcp_mangle_rule``): DHCP/DNS
accepts and the checksum fill per bridge, FORWARD accepts, SNAT and its
ACCEPT exceptions per network, the metadata DNAT/REDIRECT and the five
rules of each associated floating IP, on nova's IptablesManager frame
(:data:`~flatnet.plan.iptables.NOVA_SKELETON`). Every interpolated value
is validated first (device names, IPv4 addresses/CIDRs, ports), so
nothing but a well-formed token can reach a rule.

The addresses the host needs are planned here too, as data the service
hands to the netlink executor: the metadata address on ``lo``
(:func:`metadata_bind`, nova ``linux_net.ensure_metadata_ip``) and the
floating IPs' /32s (:func:`floating_device` says where).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Literal

import netaddr

from flatnet.model import FloatingIp, Network
from flatnet.plan.iptables import (
    NOVA_SKELETON,
    RuleSet,
    RuleSetBuilder,
)
from flatnet.plan.settings import (  # re-exported (this planner's names)
    HostRulesSettings as HostRulesSettings,  # noqa: PLC0414
)
from flatnet.plan.settings import (
    ipv4 as ipv4,  # noqa: PLC0414
)
from flatnet.plan.settings import (
    ipv4_cidr as ipv4_cidr,  # noqa: PLC0414
)
from flatnet.plan.settings import validate_device_name, validate_port

#: The link-local metadata address (nova ``linux_net.metadata_forward``
#: and ``ensure_metadata_ip``); the one definition in flatnet.
METADATA_ADDRESS = netaddr.IPAddress("169.254.169.254")
#: Where nova's ``ensure_metadata_ip`` puts it (scope link).
METADATA_DEVICE = "lo"


def dhcp_accept_rules(bridge: str) -> list[str]:
    """filter INPUT: DHCP and DNS to dnsmasq on ``bridge`` (nova
    ``linux_net._add_dnsmasq_accept_rules``, from ``restart_dhcp``)."""
    dev = validate_device_name(bridge)
    return [
        f"-i {dev} -p {proto} -m {proto} --dport {port} -j ACCEPT"
        for port in (67, 53)
        for proto in ("udp", "tcp")
    ]


def checksum_rule(bridge: str) -> str:
    """mangle POSTROUTING: fill DHCP reply checksums (nova
    ``linux_net._add_dhcp_mangle_rule``; RH bz 910619)."""
    dev = validate_device_name(bridge)
    return f"-o {dev} -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill"


def forward_rules(bridge: str, settings: HostRulesSettings) -> list[str]:
    """filter FORWARD for ``bridge`` (nova ``get_gateway_rules``)."""
    dev = validate_device_name(bridge)
    if "all" in settings.forward_bridge_interface:
        return [f"-i {dev} -j ACCEPT", f"-o {dev} -j ACCEPT"]
    rules: list[str] = []
    for iface in settings.forward_bridge_interface:
        rules += [
            f"-i {dev} -o {iface} -j ACCEPT",
            f"-i {iface} -o {dev} -j ACCEPT",
        ]
    drop = settings.iptables_drop_action
    return [
        *rules,
        f"-i {dev} -o {dev} -j ACCEPT",
        f"-i {dev} -j {drop}",
        f"-o {dev} -j {drop}",
    ]


def snat_rules(
    cidr: object, settings: HostRulesSettings, is_external: bool = False
) -> list[str]:
    """nat snat chain for one fixed range (nova ``add_snat_rule``)."""
    net, source = ipv4_cidr(cidr), settings.routing_source_ip
    if source is None:
        return []
    if is_external:
        return [
            f"-s {net} -d {dst} -j SNAT --to-source {source}"
            for dst in settings.force_snat_range
        ]
    rule = f"-s {net} -d 0.0.0.0/0 -j SNAT --to-source {source}"
    if settings.public_interface:
        rule += f" -o {settings.public_interface}"
    return [rule]


def postrouting_accept_rules(
    cidr: object, settings: HostRulesSettings
) -> list[str]:
    """nat POSTROUTING: traffic that must not be SNATed (nova
    ``linux_net.init_host``)."""
    net = ipv4_cidr(cidr)
    return [
        f"-s {net} -d {settings.metadata_host}/32 -j ACCEPT",
        *(f"-s {net} -d {dmz} -j ACCEPT" for dmz in settings.dmz_cidr),
        f"-s {net} -d {net} -m conntrack ! --ctstate DNAT -j ACCEPT",
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class AddressBind:
    """A /32 the host must carry: ``address`` on ``device``."""

    device: str
    address: netaddr.IPAddress
    scope: Literal["global", "link"] = "global"

    def __str__(self) -> str:
        return f"{self.address}/32 dev {self.device}"


def metadata_bind() -> AddressBind:
    """169.254.169.254/32 scope link on lo (nova
    ``linux_net.ensure_metadata_ip``, from ``l3.LinuxNetL3.initialize``
    on the network host)."""
    return AddressBind(METADATA_DEVICE, METADATA_ADDRESS, "link")


def metadata_forward_rule(settings: HostRulesSettings) -> str:
    """nat PREROUTING: 169.254.169.254:80 to the metadata API (nova
    ``linux_net.metadata_forward``)."""
    head = f"-s 0.0.0.0/0 -d {METADATA_ADDRESS}/32 -p tcp -m tcp --dport 80"
    port = validate_port(settings.metadata_port)
    if str(settings.metadata_host) == "127.0.0.1":
        return f"{head} -j REDIRECT --to-ports {port}"
    return f"{head} -j DNAT --to-destination {settings.metadata_host}:{port}"


def floating_forward_rules(
    floating: object,
    fixed: object,
    device: str | None,
) -> list[tuple[str, str]]:
    """(chain, rule) pairs of nova's ``linux_net.floating_forward_rules``."""
    flt, fix = str(ipv4(floating)), str(ipv4(fixed))
    if device:
        dev = validate_device_name(device)
        snat = [
            ("float-snat", f"-s {fix} -j SNAT --to {flt} -d {fix}"),
            ("float-snat", f"-s {fix} -j SNAT --to {flt} -o {dev}"),
        ]
    else:
        snat = [("float-snat", f"-s {fix} -j SNAT --to {flt}")]
    return [
        *snat,
        ("PREROUTING", f"-d {flt} -j DNAT --to {fix}"),
        ("OUTPUT", f"-d {flt} -j DNAT --to {fix}"),
        (
            "POSTROUTING",
            f"-s {fix} -m conntrack --ctstate DNAT -j SNAT --to-source {flt}",
        ),
    ]


def is_external(network: Network) -> bool:
    """nova: the DHCP server is external if it is not the gateway."""
    return (
        network.dhcp_server is not None
        and network.dhcp_server != network.gateway
    )


def associated(floating: Iterable[FloatingIp]) -> list[FloatingIp]:
    """Floating IPs with a fixed address, sorted by address."""
    return sorted(
        (f for f in floating if f.fixed_address is not None),
        key=lambda f: int(ipv4(f.address)),
    )


def floating_device(
    fip: FloatingIp, settings: HostRulesSettings
) -> str | None:
    """nova: ``public_interface`` wins over the floating IP's own."""
    return settings.public_interface or fip.interface


def host_ruleset(
    networks: Sequence[Network],
    floating: Sequence[FloatingIp],
    settings: HostRulesSettings,
) -> RuleSet:
    """The full desired RuleSet of the network host.

    Deterministic: networks by id, floating IPs by address. Raises an
    InvalidInput subclass for any bad name or address.
    """
    b = RuleSetBuilder(settings.wrap_prefix, NOVA_SKELETON)
    for net in sorted(networks, key=lambda n: n.id):
        for rule in forward_rules(net.bridge, settings):
            b.add("filter", "FORWARD", rule)
        if not net.enable_dhcp:
            continue
        for rule in dhcp_accept_rules(net.bridge):
            b.add("filter", "INPUT", rule)
        b.add("mangle", "POSTROUTING", checksum_rule(net.bridge))
        for rule in snat_rules(net.cidr, settings, is_external(net)):
            b.add("nat", "snat", rule)
        for rule in postrouting_accept_rules(net.cidr, settings):
            b.add("nat", "POSTROUTING", rule)
    b.add("nat", "PREROUTING", metadata_forward_rule(settings))
    for fip in associated(floating):
        device = floating_device(fip, settings)
        for chain, rule in floating_forward_rules(
            fip.address, fip.fixed_address, device
        ):
            b.add("nat", chain, rule)
    return b.build()
