"""Security-group rows written straight into the nova tables (tests).

A test-only stand-in for the "sg" stream's ``flatnet-manage secgroup``
writes: each call is one transaction that also bumps the ``firewall``
generation, as every security-group change must.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, update

from flatnet.db import api, rows, secgroups
from flatnet.db.firewall_read import ASSOC, GROUPS, RULES


def _write(db: api.Database, table: Any, **values: Any) -> int:
    """Insert one row, bump and log the change as the real writers do
    (the rule's group, or the member instance)."""
    with db.write() as conn:
        result = conn.execute(insert(table).values(deleted=0, **values))
        uuid = values.get("instance_uuid")
        gid = values.get("parent_group_id")
        secgroups.bump(
            conn, [] if uuid is None else [uuid], [] if gid is None else [gid]
        )
        return rows.inserted_id(result)


def add_group(db: api.Database, name: str) -> int:
    return _write(db, GROUPS, name=name, project_id="p")


def add_rule(  # noqa: PLR0913
    db: api.Database,
    group: int,
    protocol: str | None = "tcp",
    ports: tuple[int, int] | None = (22, 22),
    cidr: str | None = None,
    source_group: int | None = None,
) -> int:
    low, high = ports if ports else (None, None)
    if cidr is None and source_group is None:
        cidr = "0.0.0.0/0"
    return _write(
        db, RULES, parent_group_id=group, protocol=protocol,
        from_port=low, to_port=high, cidr=cidr, group_id=source_group,
    )  # fmt: skip


def associate(db: api.Database, group: int, instance_uuid: str) -> int:
    return _write(
        db, ASSOC, security_group_id=group, instance_uuid=instance_uuid
    )


def delete_rule(db: api.Database, rule_id: int) -> None:
    with db.write() as conn:
        parent = conn.execute(
            update(RULES)
            .where(RULES.c.id == rule_id)
            .values(deleted=rule_id)
            .returning(RULES.c.parent_group_id)
        ).scalar_one()
        secgroups.bump(conn, groups=[parent])
