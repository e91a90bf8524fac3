"""The compute host's instance filters as data (PURE).

nova's ``IptablesFirewallDriver`` layout (nova ``virt/firewall.py``:
``instance_rules``, ``add_filters_for_instance``,
``_build_tcp_udp_rule``, ``_build_icmp_rule``), rendered from a
:class:`~flatnet.plan.firewall_model.HostFirewall` in one go:

* the frame of nova's ``IptablesManager`` for the ``nova-compute``
  binary (:data:`COMPUTE_SKELETON`: wrapped ``INPUT/OUTPUT/FORWARD``,
  ``local`` reached from ``nova-filter-top`` at the top of ``FORWARD``
  and ``OUTPUT``) plus ``sg-fallback`` (``-j DROP``);
* per instance a chain ``inst-<id>`` (the integer id): INVALID drop,
  RELATED/ESTABLISHED accept, DHCP replies from the network's DHCP
  server, the network's own range when ``allow_same_net_traffic``, the
  security-group rules in rule-id order, then ``-j $sg-fallback``;
  ``local`` jumps there by destination address, one rule per fixed IP;
* when an instance has a DHCP server, nova's DHCP request accept
  (``0.0.0.0:68 -> 255.255.255.255:67``) in the wrapped ``INPUT`` and
  ``FORWARD``. (nova's ``provider`` chain was removed in nova 13.0.0.)

A rule whose source is a group matches the group's member addresses.
With ``remote_group_sets`` (flatnet's default) that is ONE rule
matching an ipset (``-m set --match-set <prefix>-sg-<id> src``), so a
member joining or leaving is one set update and no iptables change;
the plan carries the sets (:attr:`FirewallPlan.ipsets`). Without it,
nova's literal expansion: one rule per member address, for parity.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Mapping

import netaddr

from flatnet.plan.firewall_model import (
    ANY,
    FilteredInstance,
    HostFirewall,
    SecurityGroup,
    SecurityGroupRule,
)
from flatnet.plan.ipset import IpSetSpec, set_members, validate_set_name
from flatnet.plan.iptables import (
    NOVA_SKELETON,
    Chain,
    RuleSet,
    RuleSetBuilder,
    SkeletonRule,
    wrap,
)
from flatnet.plan.settings import (  # re-exported (this planner's names)
    COMPUTE_PREFIX as COMPUTE_PREFIX,  # noqa: PLC0414
)
from flatnet.plan.settings import (
    FirewallSettings as FirewallSettings,  # noqa: PLC0414
)

FALLBACK = "sg-fallback"
LOCAL = "local"
#: nova IptablesManager's frame plus IptablesFirewallDriver.__init__'s
#: ``sg-fallback`` chain with its single ``-j DROP``
COMPUTE_SKELETON = NOVA_SKELETON.extended(
    chains={"filter": (FALLBACK,)},
    rules=(SkeletonRule("filter", FALLBACK, "-j DROP"),),
)
#: nova IptablesFirewallDriver.prepare_instance_filter (``dhcp_create``)
DHCP_REQUEST_RULE = (
    "-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp "
    "--sport 68 --dport 67 -j ACCEPT"
)
#: nova IptablesFirewallDriver._do_basic_rules
BASIC_RULES = (
    "-m state --state INVALID -j DROP",
    "-m state --state ESTABLISHED,RELATED -j ACCEPT",
)


@dataclasses.dataclass(frozen=True)
class FirewallPlan:
    """The host's desired filter state: iptables rules and the sets
    they match (sorted by name; empty without ``remote_group_sets``)."""

    ruleset: RuleSet
    ipsets: tuple[IpSetSpec, ...] = ()


def instance_chain(instance_id: int) -> str:
    """nova's ``_instance_chain_name``: ``inst-<id>`` (short name)."""
    return f"inst-{instance_id}"


def remote_group_set(prefix: str, group_id: int) -> str:
    """The set of group ``group_id``'s members: ``<prefix>-sg-<id>``
    (at most 29 chars, so that its temporary twin fits ipset's 31)."""
    return validate_set_name(f"{prefix}-sg-{group_id}")


def port_args(rule: SecurityGroupRule) -> list[str]:
    """nova's ``-j ACCEPT [-p P]`` plus ``_build_tcp_udp_rule`` /
    ``_build_icmp_rule``: ``--dport N``, ``-m multiport --dports A:B``,
    ``-m icmp --icmp-type T[/C]`` (type -1: any icmp)."""
    args = ["-j ACCEPT"]
    if rule.protocol is None:
        return args
    args += ["-p", rule.protocol]
    low, high = rule.from_port, rule.to_port
    if rule.protocol in ("tcp", "udp"):
        if low == high:
            args += ["--dport", str(low)]
        else:
            args += ["-m", "multiport", "--dports", f"{low}:{high}"]
    elif low != ANY:
        kind = str(low) if high == ANY else f"{low}/{high}"
        args += ["-m", "icmp", "--icmp-type", kind]
    return args


def group_rule_lines(
    rule: SecurityGroupRule, host: HostFirewall, settings: FirewallSettings
) -> list[str]:
    """The chain lines of one security-group rule: one for a cidr or
    (with sets) a source group, one per member address otherwise."""
    args = port_args(rule)
    if rule.cidr is not None:
        return [" ".join([*args, "-s", str(rule.cidr)])]
    group = rule.source_group
    assert group is not None  # noqa: S101 - SecurityGroupRule's invariant
    if settings.remote_group_sets:
        name = remote_group_set(settings.prefix, group)
        return [" ".join([*args, "-m set --match-set", name, "src"])]
    members = sorted(host.members_of(group), key=int)
    return [" ".join([*args, f"-s {address}"]) for address in members]


def instance_rules(
    instance: FilteredInstance,
    host: HostFirewall,
    settings: FirewallSettings,
) -> tuple[str, ...]:
    """nova's ``instance_rules`` (v4): the rules of ``inst-<id>`` in
    order, ``$sg-fallback`` last; duplicates dropped as nova's
    ``add_rule`` did."""
    lines = list(BASIC_RULES)
    for nic in instance.nics:
        if nic.dhcp_server is not None:
            lines.append(
                f"-s {nic.dhcp_server} -p udp --sport 67 --dport 68 -j ACCEPT"
            )
    if settings.allow_same_net_traffic:
        lines += [f"-s {nic.network_cidr} -j ACCEPT" for nic in instance.nics]
    for rule in _rules_of(instance, host.group_map()):
        lines += group_rule_lines(rule, host, settings)
    lines.append(f"-j ${FALLBACK}")
    return tuple(dict.fromkeys(lines))


def _rules_of(
    instance: FilteredInstance, groups: Mapping[int, SecurityGroup]
) -> list[SecurityGroupRule]:
    """The instance's groups' rules in rule-id order (nova's DB order
    of ``SecurityGroupRuleList.get_by_instance``)."""
    found = [r for g in instance.security_groups for r in groups[g].rules]
    return sorted(found, key=operator.attrgetter("id"))


@functools.lru_cache(maxsize=65536)
def _chain(name: str, rules: tuple[str, ...]) -> Chain:
    """One validated chain, memoised: an unchanged instance keeps the
    same Chain object, which the iptables delta skips at once."""
    return Chain(name, rules)


@functools.lru_cache(maxsize=65536)
def _instance_part(
    prefix: str, inst_id: int, addresses: tuple[str, ...],
    rules: tuple[str, ...],
) -> tuple[Chain, tuple[str, ...]]:  # fmt: skip
    """An instance's chain and its ``local`` dispatch rules, memoised:
    a sync of 5,000 unchanged instances is 5,000 cache hits."""
    name = wrap(prefix, instance_chain(inst_id))
    return _chain(name, rules), tuple(f"-d {a} -j {name}" for a in addresses)


@functools.lru_cache(maxsize=4096)
def _members(addresses: frozenset[netaddr.IPAddress]) -> frozenset[str]:
    return set_members(addresses)


def firewall_plan(
    host: HostFirewall, settings: FirewallSettings
) -> FirewallPlan:
    """The full desired state of this host's instance filters.

    Instances that share networks and groups share one rendering, so a
    host of 5,000 instances costs little more than its distinct
    profiles. Raises InvalidInput (InvalidIptablesRule) for a name
    beyond the kernel's limits.
    """
    prefix = settings.prefix
    fallback = wrap(prefix, FALLBACK)
    profiles: dict[object, tuple[str, ...]] = {}
    chains: list[Chain] = []
    local: list[str] = []
    for inst in sorted(host.instances, key=operator.attrgetter("id")):
        key = (inst.profile, inst.security_groups)
        rules = profiles.get(key)
        if rules is None:
            rules = tuple(
                r.replace(f"${FALLBACK}", fallback)
                for r in instance_rules(inst, host, settings)
            )
            profiles[key] = rules
        chain, dispatch = _instance_part(
            prefix, inst.id, inst.address_text, rules
        )
        chains.append(chain)
        local += dispatch
    dhcp = any(n.dhcp_server for i in host.instances for n in i.nics)
    ruleset = _with_instances(prefix, dhcp, chains, tuple(local))
    return FirewallPlan(ruleset, _ipsets(host, settings))


def _with_instances(
    prefix: str, dhcp: bool, chains: list[Chain], local: tuple[str, ...]
) -> RuleSet:
    """The skeleton's RuleSet (through the generic builder) with the
    instance chains and the ``local`` dispatch put in directly: they
    are valid by construction, and 5,000 instances then cost a sort."""
    builder = RuleSetBuilder(prefix, COMPUTE_SKELETON)
    if dhcp:
        builder.add("filter", "INPUT", DHCP_REQUEST_RULE)
        builder.add("filter", "FORWARD", DHCP_REQUEST_RULE)
    base = builder.build()
    table = base.tables["filter"]
    local_name = wrap(prefix, LOCAL)
    merged = [c for c in table.chains if c.name != local_name]
    merged += [Chain(local_name, local), *chains]
    merged.sort(key=operator.attrgetter("name"))
    filter_table = dataclasses.replace(table, chains=tuple(merged))
    return RuleSet(prefix, {**base.tables, "filter": filter_table})


def _ipsets(
    host: HostFirewall, settings: FirewallSettings
) -> tuple[IpSetSpec, ...]:
    """One set per group that is the source of a rule some instance
    here uses (with ``remote_group_sets``)."""
    if not settings.remote_group_sets:
        return ()
    groups = host.group_map()
    used = {g for inst in host.instances for g in inst.security_groups}
    sources = {
        rule.source_group
        for g in used
        for rule in groups[g].rules
        if rule.source_group is not None
    }
    return tuple(
        IpSetSpec(
            remote_group_set(settings.prefix, g), _members(host.members_of(g))
        )
        for g in sorted(sources)
    )
