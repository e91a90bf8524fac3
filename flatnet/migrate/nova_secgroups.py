"""PURE: nova's security groups, rules and memberships as flatnet's rows.

flatnet's three tables have nova's columns (``security_groups``,
``security_group_rules``, ``security_group_instance_association`` in
``nova/db/sqlalchemy/models.py``), so rows keep nova's ids: a rule's
``parent_group_id`` and source ``group_id`` stay valid. What changes:

* a group without project gets ``''`` (flatnet stores "no project" as
  the empty string so that the unique ``(project_id, name, deleted)``
  also holds for it);
* a rule's ``protocol`` is lower-cased (nova ``_rule_args_to_dict``
  stored it lower-cased; older rows may not be) and each rule is checked
  as flatnet's firewall reads it (:class:`~flatnet.plan.firewall_model.
  SecurityGroupRule`): bad rows are an InvalidInput naming the nova row;
* soft-deleted rows, rules of groups not imported, rules whose source
  group is gone (nova ``security_group_destroy`` deletes them with the
  group, so only inconsistent data has them), IPv6 rules (flatnet's
  firewall is IPv4; nova-network FlatDHCP served IPv4) and memberships
  of instances that are not imported are skipped and counted.

``security_group_default_rules`` are not imported: nova copied them
into a project's ``default`` group when it created that group
(``nova/db/sqlalchemy/api.py _security_group_ensure_default``), so the
imported default groups already hold those copies; flatnet creates a
new project's ``default`` group empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import netaddr

from flatnet import exception, hostname
from flatnet.migrate import nova_values
from flatnet.plan import firewall_model as fw

GROUPS = "security_groups"
RULES = "security_group_rules"
MEMBERS = "security_group_instance_association"
TABLES = (GROUPS, RULES, MEMBERS)
DELETED = "deleted in nova (soft-deleted row)"
DEFAULT_RULES = (
    "not imported: nova copied them into each project's default group "
    "when it created it, the imported groups keep those copies"
)


class Plan(Protocol):
    rows: dict[str, list[dict[str, Any]]]

    def skip(self, table: str, reason: str, count: int = 1) -> None: ...


def _stamps(row: Mapping[str, Any]) -> dict[str, Any]:
    values = {
        k: row.get(k) for k in ("created_at", "updated_at", "deleted_at")
    }
    values["deleted"] = int(row.get("deleted") or 0)
    return values


def _why(exc: exception.FlatnetError) -> str:
    return str(exc.kwargs.get("reason") or exc)


def _group_row(row: Mapping[str, Any]) -> dict[str, Any]:
    where = nova_values.where(GROUPS, row)
    try:
        name = hostname.check_text(str(row.get("name") or ""), "name")
        description = row.get("description")
        if description is not None:
            hostname.check_text(str(description), "description")
        project = row.get("project_id") or ""
        if project:
            hostname.check_text(str(project), "project id")
    except exception.InvalidInput as exc:
        raise exception.InvalidInput(reason=f"{where}: {_why(exc)}") from exc
    return {
        "id": int(row["id"]),
        "name": name,
        "description": description,
        "user_id": row.get("user_id"),
        "project_id": project,
        **_stamps(row),
    }


def _rule_skip(row: Mapping[str, Any], groups: set[int]) -> str | None:
    if row.get("deleted"):
        return DELETED
    if row.get("parent_group_id") not in groups:
        return "its group is not imported (deleted or missing in nova)"
    source = row.get("group_id")
    if source is not None and source not in groups:
        return "its source group is deleted or missing in nova"
    cidr = row.get("cidr")
    if cidr and ":" in str(cidr):
        return "IPv6 rule (flatnet's firewall and nova FlatDHCP are IPv4)"
    return None


def _rule_row(row: Mapping[str, Any]) -> dict[str, Any]:
    cidr = nova_values.cidr_text(row.get("cidr"), RULES, row)
    protocol = row.get("protocol")
    protocol = str(protocol).lower() if protocol else None
    ports = (row.get("from_port"), row.get("to_port"))
    try:
        fw.SecurityGroupRule(
            protocol=protocol, from_port=ports[0], to_port=ports[1],
            cidr=netaddr.IPNetwork(cidr) if cidr else None,
            source_group=row.get("group_id"), id=int(row["id"]),
        )  # fmt: skip
    except exception.InvalidInput as exc:
        where = nova_values.where(RULES, row)
        raise exception.InvalidInput(reason=f"{where}: {_why(exc)}") from exc
    return {
        "id": int(row["id"]),
        "parent_group_id": int(row["parent_group_id"]),
        "protocol": protocol,
        "from_port": ports[0],
        "to_port": ports[1],
        "cidr": cidr,
        "group_id": row.get("group_id"),
        **_stamps(row),
    }


def _plan_groups(rows: Sequence[Mapping[str, Any]], plan: Plan) -> None:
    for row in rows:
        if row.get("deleted"):
            plan.skip(GROUPS, DELETED)
        else:
            plan.rows[GROUPS].append(_group_row(row))


def _plan_rules(rows: Sequence[Mapping[str, Any]], plan: Plan) -> None:
    groups = {g["id"] for g in plan.rows[GROUPS]}
    for row in rows:
        reason = _rule_skip(row, groups)
        if reason:
            plan.skip(RULES, reason)
        else:
            plan.rows[RULES].append(_rule_row(row))


def _plan_members(
    rows: Sequence[Mapping[str, Any]], instances: Iterable[str], plan: Plan
) -> None:
    groups = {g["id"] for g in plan.rows[GROUPS]}
    live = set(instances)
    seen: set[tuple[Any, Any]] = set()
    for row in rows:
        key: tuple[Any, Any] = (
            row.get("security_group_id"),
            row.get("instance_uuid"),
        )
        if row.get("deleted"):
            plan.skip(MEMBERS, DELETED)
        elif key[0] not in groups:
            plan.skip(MEMBERS, "its group is not imported")
        elif key[1] not in live:
            plan.skip(MEMBERS, "its instance is not imported (or deleted)")
        elif key in seen:
            plan.skip(MEMBERS, "the same membership twice (kept once)")
        else:
            seen.add(key)
            plan.rows[MEMBERS].append({
                "id": int(row["id"]),
                "security_group_id": int(key[0]),
                "instance_uuid": str(key[1]),
                **_stamps(row),
            })  # fmt: skip


def plan_security_groups(
    rows: Mapping[str, Sequence[Mapping[str, Any]]], plan: Plan
) -> None:
    """Fill ``plan.rows`` for the three tables from nova's ``rows``
    (after the instances were planned: memberships need them)."""
    _plan_groups(rows.get(GROUPS, ()), plan)
    _plan_rules(rows.get(RULES, ()), plan)
    live = (i["uuid"] for i in plan.rows["instances"] if not i["deleted"])
    _plan_members(rows.get(MEMBERS, ()), live, plan)
