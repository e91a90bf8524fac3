"""Security groups, their rules and their instances (nova
``security_group_*`` in nova/db/sqlalchemy/api.py).

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.

Each call is one short write transaction. Every change that can alter
some host's firewall (a group deleted, a rule added or removed, an
instance joining or leaving a group, an instance created, deleted or
moved) bumps the generation scope ``firewall`` in the same transaction,
so a compute host polling that scope re-reads
:func:`flatnet.db.firewall_state.host_firewall` and cannot miss it.

Groups are named per project (unique ``(project_id, name, deleted)``,
nova's constraint). flatnet stores "no project" as ``''`` so that the
constraint also holds for it. The ``default`` group of a project is
created on first use, as nova's ``_security_group_ensure_default`` did,
with description ``default`` and no rules (nova copied
``security_group_default_rules``, empty unless an admin filled it): its
members reach each other only through ``allow_same_net_traffic``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    Connection,
    Insert,
    Update,
    bindparam,
    delete,
    select,
    update,
)

from flatnet import exception, hostname
from flatnet.db import models, rows
from flatnet.db.engine import Database
from flatnet.plan import firewall_model as fw

LOG = logging.getLogger(__name__)

GROUPS = models.SECURITY_GROUPS
RULES = models.SECURITY_GROUP_RULES
MEMBERS = models.SECURITY_GROUP_INSTANCES
CHANGES = models.FIREWALL_CHANGES
FIREWALL_COUNTER = "firewall"
#: the firewall change log keeps this many generations (pruned every
#: LOG_PRUNE_EVERY); scope LOG_FLOOR holds the newest generation pruned
LOG_KEEP = 100_000
LOG_PRUNE_EVERY = 1024
LOG_FLOOR = "firewall-log-floor"
DEFAULT_GROUP = "default"
#: nova ``SecurityGroupBase`` refuses to delete these ("system group")
RO_GROUPS = (DEFAULT_GROUP,)


@dataclasses.dataclass(frozen=True, slots=True)
class SecurityGroupInfo:
    """A group as the CLI shows it: its rules (``SecurityGroupRule``
    with their ids), the names of the rules' source groups, and the
    host names of its member instances."""

    id: int
    name: str
    description: str | None
    project_id: str | None
    rules: tuple[fw.SecurityGroupRule, ...] = ()
    source_names: dict[int, str] = dataclasses.field(default_factory=dict)
    instances: tuple[str, ...] = ()


@functools.cache
def _bump_statement() -> Update:
    """Built once: building a statement costs more than running it on
    SQLite, and this one runs in every allocation."""
    return (
        update(rows.GENERATIONS)
        .where(rows.GENERATIONS.c.scope == FIREWALL_COUNTER)
        .values(generation=rows.GENERATIONS.c.generation + 1)
    )


def bump(
    conn: Connection,
    instances: Iterable[str] = (),
    groups: Iterable[int] = (),
) -> None:
    """Announce a firewall change (same transaction as the change): bump
    the ``firewall`` generation, then log what it changed, the
    ``instances`` (uuids) whose filters or memberships changed and the
    ``groups`` whose rules changed, at the new generation (after the
    bump, so the log rows carry the generation this commit makes)."""
    if conn.execute(_bump_statement()).rowcount == 0:
        rows.bump_counter(conn, FIREWALL_COUNTER)  # creates the scope
    stamps: list[dict[str, str | int | None]]
    stamps = [{"uuid": u, "gid": None} for u in instances]
    stamps += [{"uuid": None, "gid": g} for g in groups]
    if stamps:
        conn.execute(_log_statement(), stamps)
    _prune(conn)


def _prune(conn: Connection) -> None:
    """Every ``LOG_PRUNE_EVERY`` generations, drop the log rows more than
    ``LOG_KEEP`` generations old and record that floor (scope
    ``firewall-log-floor``): a reader that lags further reads in full."""
    generation = rows.counter(conn, FIREWALL_COUNTER)
    floor = generation - LOG_KEEP
    if generation % LOG_PRUNE_EVERY or floor <= 0:
        return
    conn.execute(delete(CHANGES).where(CHANGES.c.generation <= floor))
    rows.upsert(
        conn, rows.GENERATIONS, {"scope": LOG_FLOOR}, {"generation": floor}
    )


@functools.cache
def _log_statement() -> Insert:
    current = (
        select(rows.GENERATIONS.c.generation)
        .where(rows.GENERATIONS.c.scope == FIREWALL_COUNTER)
        .scalar_subquery()
    )
    return CHANGES.insert().values(
        generation=current,
        instance_uuid=bindparam("uuid"),
        group_id=bindparam("gid"),
    )


def project_of(project_id: str | None) -> str:
    if not project_id:
        return ""
    return hostname.check_text(project_id, "project id")


def _live_group() -> Any:
    return GROUPS.c.deleted == 0


def find_group(conn: Connection, name: str, project: str) -> Any:
    return conn.execute(
        select(GROUPS).where(
            GROUPS.c.name == name,
            GROUPS.c.project_id == project,
            _live_group(),
        )
    ).first()


def _insert_group(
    conn: Connection, name: str, description: str | None, project: str
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if a row was created."""
    # Imported here: the CLI's read-only commands never load a dialect.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # noqa: PLC0415
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # noqa: PLC0415
    stmt = insert(GROUPS).values(
        name=name,
        description=description,
        project_id=project,
        created_at=rows.now(),
        deleted=0,
    )
    done = conn.execute(
        stmt.on_conflict_do_nothing(
            index_elements=["project_id", "name", "deleted"]
        ).returning(GROUPS.c.id)
    )
    # RETURNING, not rowcount: rowcount was not 0 for a skipped row on
    # PostgreSQL (psycopg) in tests/db/test_secgroups.py
    return done.first() is not None


def ensure_default(conn: Connection, project: str) -> Any:
    """The project's ``default`` group row, created on first use (a
    concurrent creator wins the race; its row is returned)."""
    row = find_group(conn, DEFAULT_GROUP, project)
    if row is None:
        _insert_group(conn, DEFAULT_GROUP, DEFAULT_GROUP, project)
        row = find_group(conn, DEFAULT_GROUP, project)
    return row


def group_row(conn: Connection, name: str, project: str) -> Any:
    """A live group by name (``default`` is created on first use).
    Raises NotFound."""
    if name == DEFAULT_GROUP:
        return ensure_default(conn, project)
    row = find_group(conn, name, project)
    if row is None:
        raise exception.NotFound(what=describe(name, project))
    return row


def describe(name: str, project: str) -> str:
    where = f" in project {project}" if project else ""
    return f"security group {name!r}{where}"


def to_rule(row: Any) -> fw.SecurityGroupRule:
    """A stored rule as the planner's value (re-validated)."""
    return fw.SecurityGroupRule(
        protocol=row.protocol,
        from_port=row.from_port,
        to_port=row.to_port,
        cidr=row.cidr,
        source_group=row.group_id,
        id=row.id,
    )


def rules_of(conn: Connection, group_id: int) -> list[fw.SecurityGroupRule]:
    found = conn.execute(
        select(RULES)
        .where(RULES.c.parent_group_id == group_id, RULES.c.deleted == 0)
        .order_by(RULES.c.id)
    ).all()
    return [to_rule(r) for r in found]


def _instances_of(conn: Connection, group_id: int) -> list[str]:
    inst = rows.INSTANCES
    found = conn.execute(
        select(inst.c.hostname)
        .join(MEMBERS, MEMBERS.c.instance_uuid == inst.c.uuid)
        .where(
            MEMBERS.c.security_group_id == group_id,
            MEMBERS.c.deleted == 0,
            inst.c.deleted == 0,
        )
        .order_by(inst.c.hostname)
    ).all()
    return [r.hostname for r in found]


def _info(conn: Connection, row: Any) -> SecurityGroupInfo:
    rules = rules_of(conn, row.id)
    sources = {r.source_group for r in rules if r.source_group is not None}
    names: dict[int, str] = {}
    if sources:
        found = conn.execute(
            select(GROUPS.c.id, GROUPS.c.name).where(GROUPS.c.id.in_(sources))
        ).all()
        names = {r.id: r.name for r in found}
    return SecurityGroupInfo(
        id=row.id,
        name=row.name,
        description=row.description,
        project_id=row.project_id or None,
        rules=tuple(rules),
        source_names=names,
        instances=tuple(_instances_of(conn, row.id)),
    )


# --- groups -------------------------------------------------------------
def secgroup_create(
    db: Database,
    name: str,
    description: str | None = None,
    project_id: str | None = None,
) -> SecurityGroupInfo:
    """A new group (the project's ``default`` is ensured first, as nova
    did). Raises InvalidInput, Conflict (the name exists)."""
    hostname.check_text(name, "security group name")
    if description is not None and description != "":
        hostname.check_text(description, "description")
    project = project_of(project_id)
    with db.write() as conn:
        ensure_default(conn, project)
        if not _insert_group(conn, name, description or None, project):
            raise exception.Conflict(
                reason=f"{describe(name, project)} already exists"
            )
        return _info(conn, find_group(conn, name, project))


def secgroup_list(
    db: Database, project_id: str | None = None
) -> list[SecurityGroupInfo]:
    """Every live group (of ``project_id`` if given), by project, name."""
    query = select(GROUPS).where(_live_group())
    if project_id is not None:
        query = query.where(GROUPS.c.project_id == project_of(project_id))
    with db.read() as conn:
        found = conn.execute(
            query.order_by(GROUPS.c.project_id, GROUPS.c.name)
        ).all()
        return [_info(conn, row) for row in found]


def secgroup_get(
    db: Database, name: str, project_id: str | None = None
) -> SecurityGroupInfo:
    """One group with its rules and instances. Raises NotFound."""
    project = project_of(project_id)
    with db.read() as conn:
        row = find_group(conn, name, project)
        if row is None:
            raise exception.NotFound(what=describe(name, project))
        return _info(conn, row)


def secgroup_delete(
    db: Database, name: str, project_id: str | None = None
) -> SecurityGroupInfo:
    """Soft-delete a group and its rules. Refused (Conflict, nothing
    changed) for ``default``, a group with instances (nova
    ``SecurityGroupInUse``) and a group that another group's rule names
    as its source (nova deleted those rules silently). Raises NotFound."""
    project = project_of(project_id)
    with db.write() as conn:
        row = find_group(conn, name, project)
        if row is None:
            raise exception.NotFound(what=describe(name, project))
        info = _info(conn, row)
        _check_deletable(conn, info)
        when = rows.now()
        conn.execute(
            update(RULES)
            .where(RULES.c.parent_group_id == row.id, RULES.c.deleted == 0)
            .values(deleted=RULES.c.id, deleted_at=when)
        )
        conn.execute(
            update(GROUPS)
            .where(GROUPS.c.id == row.id)
            .values(deleted=row.id, deleted_at=when)
        )
        bump(conn, groups=[row.id])
    LOG.info("deleted security group %s (%s)", name, row.id)
    return info


def _check_deletable(conn: Connection, info: SecurityGroupInfo) -> None:
    what = describe(info.name, info.project_id or "")
    if info.name in RO_GROUPS:
        raise exception.Conflict(reason=f"{what} is a system group")
    if info.instances:
        raise exception.Conflict(
            reason=f"{what} is in use by instance(s) "
            + ", ".join(info.instances[:5])
        )
    users = conn.execute(
        select(GROUPS.c.name)
        .join(RULES, RULES.c.parent_group_id == GROUPS.c.id)
        .where(
            RULES.c.group_id == info.id,
            RULES.c.deleted == 0,
            RULES.c.parent_group_id != info.id,
            _live_group(),
        )
        .distinct()
    ).all()
    if users:
        raise exception.Conflict(
            reason=f"{what} is the source group of rules of "
            + ", ".join(sorted(r.name for r in users))
        )
