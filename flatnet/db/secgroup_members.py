"""Which instances are in which security group (nova
``security_group_instance_association``), and where instances run.

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`. Every change
bumps the ``firewall`` generation in its own transaction (see
:mod:`flatnet.db.secgroups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, or_, select, update

from flatnet import exception, hostname, model
from flatnet.db import models, rows, secgroups
from flatnet.db.engine import Database
from flatnet.db.secgroups import (
    FIREWALL_COUNTER,
    GROUPS,
    MEMBERS,
    describe,
    find_group,
    group_row,
    project_of,
)


def _instance_row(conn: Connection, ident: str) -> Any:
    inst = rows.INSTANCES
    row = conn.execute(
        select(inst).where(
            inst.c.deleted == 0,
            or_(inst.c.uuid == ident, inst.c.hostname == str(ident).lower()),
        )
    ).first()
    if row is None:
        raise exception.InstanceNotFound(instance=ident)
    return row


def _membership(conn: Connection, group_id: int, uuid: str) -> Any:
    return conn.execute(
        select(MEMBERS.c.id).where(
            MEMBERS.c.security_group_id == group_id,
            MEMBERS.c.instance_uuid == uuid,
            MEMBERS.c.deleted == 0,
        )
    ).first()


def attach(
    conn: Connection, instance: model.Instance, groups: Sequence[str]
) -> None:
    """Put a new instance in ``groups`` (names in its project; the
    caller bumps). Raises NotFound."""
    project = project_of(instance.project_id)
    ids = {group_row(conn, name, project).id for name in groups}
    for group_id in sorted(ids):
        conn.execute(
            MEMBERS.insert().values(
                security_group_id=group_id,
                instance_uuid=instance.uuid,
                created_at=rows.now(),
                deleted=0,
            )
        )


def detach_all(conn: Connection, instance_uuid: str) -> None:
    """An instance being deleted leaves its groups (nova
    ``instance_destroy``)."""
    conn.execute(
        update(MEMBERS)
        .where(
            MEMBERS.c.instance_uuid == instance_uuid, MEMBERS.c.deleted == 0
        )
        .values(deleted=MEMBERS.c.id, deleted_at=rows.now())
    )


def instance_add_secgroup(db: Database, ident: str, group: str) -> None:
    """nova ``add_to_instance``. Raises InstanceNotFound, NotFound,
    Conflict (already a member)."""
    with db.write() as conn:
        inst = _instance_row(conn, ident)
        row = group_row(conn, group, project_of(inst.project_id))
        if _membership(conn, row.id, inst.uuid) is not None:
            raise exception.Conflict(
                reason=f"instance {inst.hostname} is already in "
                f"security group {group!r}"
            )
        attach(conn, rows.to_instance(inst), [group])
        secgroups.bump(conn, [inst.uuid])


def instance_remove_secgroup(db: Database, ident: str, group: str) -> None:
    """nova ``remove_from_instance``. Raises InstanceNotFound, NotFound
    (no such group, or the instance is not in it)."""
    with db.write() as conn:
        inst = _instance_row(conn, ident)
        project = project_of(inst.project_id)
        row = find_group(conn, group, project)
        member = None if row is None else _membership(conn, row.id, inst.uuid)
        if member is None:
            raise exception.NotFound(
                what=f"instance {inst.hostname} in {describe(group, project)}"
            )
        conn.execute(
            update(MEMBERS)
            .where(MEMBERS.c.id == member.id)
            .values(deleted=member.id, deleted_at=rows.now())
        )
        secgroups.bump(conn, [inst.uuid])


def instance_secgroups(db: Database, ident: str) -> list[str]:
    """The names of an instance's groups. Raises InstanceNotFound."""
    with db.read() as conn:
        inst = _instance_row(conn, ident)
        found = conn.execute(
            select(GROUPS.c.name)
            .join(MEMBERS, MEMBERS.c.security_group_id == GROUPS.c.id)
            .where(
                MEMBERS.c.instance_uuid == inst.uuid,
                MEMBERS.c.deleted == 0,
            )
            .order_by(GROUPS.c.name)
        ).all()
    return [r.name for r in found]


def instance_set_host(db: Database, ident: str, host: str | None) -> None:
    """Move an instance to ``host`` (its filters move with it; a live
    migration in progress ends). Raises InstanceNotFound, InvalidInput."""
    if host is not None:
        hostname.check_text(host, "host")
    live = models.LIVE_MIGRATIONS
    with db.write() as conn:
        inst = _instance_row(conn, ident)
        ended = conn.execute(
            delete(live).where(live.c.instance_uuid == inst.uuid)
        ).rowcount
        if inst.host == host and not ended:
            return
        conn.execute(
            update(rows.INSTANCES)
            .where(rows.INSTANCES.c.id == inst.id)
            .values(host=host, updated_at=rows.now())
        )
        secgroups.bump(conn, [inst.uuid])


def firewall_generation(db: Database) -> int:
    """The current generation of scope ``firewall``."""
    with db.read() as conn:
        return rows.counter(conn, FIREWALL_COUNTER)
