"""Read the security groups ``export neutron`` writes, in one read.

Live groups with their live rules (nova's order: by id) and the live
memberships of live instances; :mod:`flatnet.migrate.writer` turns them
into :mod:`flatnet.migrate.neutron_secgroups`' values.
"""

from __future__ import annotations

from sqlalchemy import select

from flatnet.db import rows, secgroups
from flatnet.db.engine import Database
from flatnet.plan import firewall_model as fw

#: (id, name, description, project id or '', rules by id)
GroupRow = tuple[int, str, str | None, str, tuple[fw.SecurityGroupRule, ...]]

GROUPS = secgroups.GROUPS
RULES = secgroups.RULES
MEMBERS = secgroups.MEMBERS


def read_groups(
    db: Database,
) -> tuple[list[GroupRow], dict[str, tuple[int, ...]]]:
    """(every live group with its rules, instance uuid -> group ids)."""
    with db.read() as conn:
        rules: dict[int, list[fw.SecurityGroupRule]] = {}
        query = select(RULES).where(RULES.c.deleted == 0)
        for row in conn.execute(query.order_by(RULES.c.id)):
            rules.setdefault(row.parent_group_id, []).append(
                secgroups.to_rule(row)
            )
        groups: list[GroupRow] = [
            (g.id, g.name, g.description, g.project_id or "",
             tuple(rules.get(g.id, ())))  # fmt: skip
            for g in conn.execute(
                select(GROUPS).where(GROUPS.c.deleted == 0)
                .order_by(GROUPS.c.id)
            )
        ]  # fmt: skip
        inst = rows.INSTANCES
        live = (
            select(MEMBERS.c.instance_uuid, MEMBERS.c.security_group_id)
            .join(inst, inst.c.uuid == MEMBERS.c.instance_uuid)
            .where(MEMBERS.c.deleted == 0, inst.c.deleted == 0)
        )
        members: dict[str, list[int]] = {}
        for uuid, group in conn.execute(live):
            members.setdefault(uuid, []).append(group)
    return groups, {u: tuple(sorted(g)) for u, g in members.items()}
