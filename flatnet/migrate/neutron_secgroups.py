"""PURE: flatnet's (nova's) security groups as Neutron request bodies.

Sources: neutron-lib ``neutron_lib/api/definitions/security_groups.py``
(rule attributes; ``port_range_min``/``max`` are the ICMP type and code
for icmp); Neutron ``neutron/db/securitygroups_db.py``
(``create_security_group`` adds, to every new group, one egress rule per
ethertype with no other field; ``_ensure_default_security_group``
creates each project's ``default`` group with those two egress rules
and one ingress rule per ethertype from the group itself, and refuses a
second group named ``default``); nova ``nova/virt/firewall.py
IptablesFirewallDriver`` (``instance_rules``: ingress only, the
instance chain sits in ``FORWARD`` for traffic *to* the instance, so
nova-network let every guest send anything; with
``allow_same_net_traffic`` (default True) it accepted everything from
the instance's fixed networks, ``_do_project_network_rules``).

The mapping (doc/migration.md):

* each nova rule -> one ingress IPv4 rule: ``protocol`` (None: any),
  tcp/udp ports -> ``port_range_min``/``max``, icmp type/code (nova's
  -1: any -> omitted), ``cidr`` -> ``remote_ip_prefix`` or the source
  group -> ``remote_group_id``;
* nova's implied egress -> ``egress`` IPv4 and IPv6 with no other
  field, in every group (Neutron creates these two itself with each
  group: a loader that POSTs them gets 409 SecurityGroupRuleExists,
  which means "present");
* ``allow_same_net_traffic`` -> one ingress IPv4 rule per exported
  network, ``remote_ip_prefix`` = its cidr, in every group;
* a nova group named ``default`` is the project's Neutron ``default``
  group (it cannot be created twice): no group body, its rules are
  added to it, and the Neutron-made ingress rules from itself that the
  nova group did not have are listed for removal.

Neutron assigns group ids: bodies refer to groups by :func:`group_ref`
(a stable uuid5 of nova's id); ``refs.json`` says what each stands for.
"""

from __future__ import annotations

import dataclasses
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from typing import Any

from flatnet.plan import firewall_model as fw

_NS = uuidlib.UUID("0b7f3c0e-2d7a-4c89-9a4f-6e6f76612d73")
DEFAULT = "default"
Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class GroupInput:
    """One live flatnet group with its rules (``project_id`` '' = none)."""

    id: int
    name: str
    description: str | None
    project_id: str
    rules: tuple[fw.SecurityGroupRule, ...] = ()


@dataclasses.dataclass(frozen=True)
class GroupExport:
    groups: list[Body]  # security_group bodies (not the defaults)
    rules: list[Body]  # security_group_rule bodies
    defaults: list[Body]  # per project default group: rules to remove
    refs: dict[str, Body]  # stand-in id -> what it stands for


def group_ref(group_id: int) -> str:
    """The stand-in for the Neutron id of flatnet group ``group_id``."""
    return str(uuidlib.uuid5(_NS, f"security-group:{group_id}"))


def _icmp_range(rule: fw.SecurityGroupRule) -> Body:
    kind = rule.from_port
    if kind is None or kind < 0:
        return {}  # any type (then any code)
    out: Body = {"port_range_min": kind}
    if rule.to_port is not None and rule.to_port >= 0:
        out["port_range_max"] = rule.to_port
    return out


def _rule_fields(rule: fw.SecurityGroupRule) -> Body:
    out: Body = {"protocol": rule.protocol}
    if rule.protocol == "icmp":
        out.update(_icmp_range(rule))
    elif rule.protocol in ("tcp", "udp"):
        out.update(port_range_min=rule.from_port, port_range_max=rule.to_port)
    if rule.source_group is not None:
        out["remote_group_id"] = group_ref(rule.source_group)
    elif rule.cidr is not None:
        out["remote_ip_prefix"] = str(rule.cidr)
    return out


def _rule(ref: str, direction: str, ethertype: str, **fields: Any) -> Body:
    body: Body = {
        "security_group_id": ref,
        "direction": direction,
        "ethertype": ethertype,
    }
    body.update({k: v for k, v in fields.items() if v is not None})
    return {"security_group_rule": body}


def group_rules(group: GroupInput, same_net: Sequence[str]) -> list[Body]:
    """Every rule the Neutron group must hold, nova's first."""
    ref = group_ref(group.id)
    found = [
        _rule(ref, "ingress", "IPv4", **_rule_fields(r))
        for r in sorted(group.rules, key=lambda r: r.id)
    ]
    found += [
        _rule(ref, "ingress", "IPv4", remote_ip_prefix=cidr)
        for cidr in same_net
    ]
    found += [_rule(ref, "egress", e) for e in ("IPv4", "IPv6")]
    return found


def _self_rule_kept(group: GroupInput) -> bool:
    """nova's group has "everything from myself" (Neutron's own
    default ingress rule for IPv4)."""
    return any(
        r.source_group == group.id and r.protocol is None for r in group.rules
    )


def _default_changes(group: GroupInput) -> Body:
    ref = group_ref(group.id)
    remove = [_rule(ref, "ingress", "IPv6", remote_group_id=ref)]
    if not _self_rule_kept(group):
        remove.insert(0, _rule(ref, "ingress", "IPv4", remote_group_id=ref))
    return {
        "security_group_id": ref,
        "project_id": group.project_id or None,
        "remove": remove,
    }


def group_body(group: GroupInput) -> Body:
    body: Body = {"name": group.name, "description": group.description or ""}
    if group.project_id:
        body["project_id"] = group.project_id
    return {"security_group": body}


def export_groups(
    groups: Iterable[GroupInput], same_net: Sequence[str] = ()
) -> GroupExport:
    """Bodies for ``groups``; ``same_net``: the cidrs
    ``allow_same_net_traffic`` opens (empty when it is off)."""
    out = GroupExport([], [], [], {})
    for group in sorted(groups, key=lambda g: g.id):
        ref = group_ref(group.id)
        if group.name == DEFAULT:
            out.defaults.append(_default_changes(group))
            out.refs[ref] = {
                "kind": "default_security_group",
                "project_id": group.project_id or None,
            }
        else:
            out.refs[ref] = {"kind": "security_group",
                             "file": "api/security_groups.json",
                             "index": len(out.groups)}  # fmt: skip
            out.groups.append(group_body(group))
        out.rules.extend(group_rules(group, same_net))
    return out
