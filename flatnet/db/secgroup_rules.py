"""Security group rules (nova ``security_group_rule_create`` /
``security_group_rule_destroy``, checks of
``SecurityGroupBase._new_ingress_rule`` and ``rule_exists``).

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`. Each change is
one write transaction that bumps the ``firewall`` generation.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, update

from flatnet import exception
from flatnet.db import rows, secgroups
from flatnet.db.engine import Database
from flatnet.db.secgroups import (
    RULES,
    describe,
    group_row,
    project_of,
    rules_of,
)
from flatnet.plan import firewall_model as fw


@dataclasses.dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as an operator gives it: protocol, ``"A:B"`` ports (or
    icmp ``"type:code"``), and a CIDR or a source group name."""

    protocol: str | None = None
    port_range: str | None = None
    cidr: str | None = None
    source_group: str | None = None

    def checked(self) -> fw.SecurityGroupRule:
        """The validated rule (source group id 0: resolved later)."""
        if self.cidr is not None and self.source_group is not None:
            raise exception.InvalidInput(
                reason="security group rule: give either a cidr or a "
                "source group (one of them)"
            )
        placeholder = None if self.source_group is None else 0
        return fw.new_rule(
            self.protocol, self.port_range, self.cidr, placeholder
        )


def _resolved(
    conn: Connection, spec: RuleSpec, project: str
) -> fw.SecurityGroupRule:
    rule = spec.checked()
    if spec.source_group is not None:
        source = group_row(conn, spec.source_group, project)
        rule = dataclasses.replace(rule, source_group=source.id)
    return rule


def secgroup_rule_add(
    db: Database, group: str, spec: RuleSpec, project_id: str | None = None
) -> fw.SecurityGroupRule:
    """Add an ingress rule to ``group`` (validated by
    :func:`flatnet.plan.firewall_model.new_rule`, nova's defaults).
    Raises InvalidInput, NotFound (group or source group), Conflict (the
    same rule exists, nova ``SecurityGroupRuleExists``)."""
    spec.checked()
    project = project_of(project_id)
    with db.write() as conn:
        parent = group_row(conn, group, project)
        rule = _resolved(conn, spec, project)
        if any(r.key == rule.key for r in rules_of(conn, parent.id)):
            what = describe(group, project)
            raise exception.Conflict(
                reason=f"this rule already exists in {what}"
            )
        result = conn.execute(
            RULES.insert().values(
                parent_group_id=parent.id,
                protocol=rule.protocol,
                from_port=rule.from_port,
                to_port=rule.to_port,
                cidr=None if rule.cidr is None else str(rule.cidr),
                group_id=rule.source_group,
                created_at=rows.now(),
                deleted=0,
            )
        )
        secgroups.bump(conn, groups=[parent.id])
        return dataclasses.replace(rule, id=rows.inserted_id(result))


def secgroup_rule_delete(
    db: Database,
    group: str,
    rule: int | RuleSpec,
    project_id: str | None = None,
) -> fw.SecurityGroupRule:
    """Delete a rule of ``group`` by id, or the rule equal to a
    :class:`RuleSpec`. Raises InvalidInput, NotFound."""
    if isinstance(rule, RuleSpec):
        rule.checked()
    project = project_of(project_id)
    with db.write() as conn:
        parent = group_row(conn, group, project)
        rules = rules_of(conn, parent.id)
        if isinstance(rule, RuleSpec):
            key = _resolved(conn, rule, project).key
            found = [r for r in rules if r.key == key]
        else:
            found = [r for r in rules if r.id == rule]
        if not found:
            what = (
                "this rule" if isinstance(rule, RuleSpec) else f"rule {rule}"
            )
            raise exception.NotFound(
                what=f"{what} of {describe(group, project)}"
            )
        conn.execute(
            update(RULES)
            .where(RULES.c.id == found[0].id)
            .values(deleted=RULES.c.id, deleted_at=rows.now())
        )
        secgroups.bump(conn, groups=[parent.id])
        return found[0]
