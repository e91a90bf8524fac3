"""Live migrations in progress: an instance filtered on two hosts.

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.

nova live migration (``nova/compute/manager.py``): the destination's
``pre_live_migration`` sets up the instance's networks and filters
(libvirt ``ensure_filtering_rules_for_instance``) BEFORE the guest moves;
the source's ``_post_live_migration`` unfilters it only AFTER the guest
has left; ``_rollback_live_migration`` drops the destination's. Here a
``live_migrations`` row (one per instance) says "filter this instance on
``dest_compute`` too"; ``instances.host`` stays the source until
:func:`migration_finish` moves it and deletes the row in one
transaction, so the source's filter goes then and not before. Every
change bumps the ``firewall`` generation in the same transaction.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, delete, or_, select, update

from flatnet import exception, hostname
from flatnet.db import models, rows, secgroups
from flatnet.db.engine import Database
from flatnet.db.secgroup_members import _instance_row

LIVE = models.LIVE_MIGRATIONS


class LiveMigration(NamedTuple):
    """An instance's live migration in progress."""

    instance_uuid: str
    source_compute: str | None
    dest_compute: str


def filtered_on(host: str) -> ColumnElement[bool]:
    """Where-clause on ``instances``: placed on ``host``, or being
    live-migrated to it."""
    arriving = select(LIVE.c.instance_uuid).where(LIVE.c.dest_compute == host)
    return or_(
        rows.INSTANCES.c.host == host, rows.INSTANCES.c.uuid.in_(arriving)
    )


def _row(conn: Connection, uuid: str) -> Any:
    return conn.execute(
        select(LIVE).where(LIVE.c.instance_uuid == uuid)
    ).first()


def forget(conn: Connection, uuid: str) -> bool:
    """Delete an instance's migration row (caller bumps); True if any."""
    gone = conn.execute(delete(LIVE).where(LIVE.c.instance_uuid == uuid))
    return bool(gone.rowcount)


def migration_get(db: Database, ident: str) -> LiveMigration | None:
    """The live migration of an instance (uuid or name), if one is in
    progress. Raises InstanceNotFound."""
    with db.read() as conn:
        inst = _instance_row(conn, ident)
        row = _row(conn, inst.uuid)
    if row is None:
        return None
    return LiveMigration(inst.uuid, row.source_compute, row.dest_compute)


def migration_begin(db: Database, ident: str, dest: str) -> bool:
    """Filter the instance on ``dest`` too (its source keeps it); True
    when this wrote something. A no-op when the instance is already on
    ``dest`` or already migrating there; a migration to another host
    is redirected to ``dest``. Raises InstanceNotFound, InvalidInput."""
    hostname.check_text(dest, "host")
    with db.write() as conn:
        inst = _instance_row(conn, ident)
        if inst.host == dest:
            return False
        row = _row(conn, inst.uuid)
        if row is not None and row.dest_compute == dest:
            return False
        forget(conn, inst.uuid)
        conn.execute(
            LIVE.insert().values(
                instance_uuid=inst.uuid, source_compute=inst.host,
                dest_compute=dest, created_at=rows.now(),
            )
        )  # fmt: skip
        secgroups.bump(conn, [inst.uuid])
        return True


def migration_finish(db: Database, ident: str, dest: str) -> bool:
    """The guest runs on ``dest``: place the instance there and end its
    migration (the source's filter goes now). True when this wrote
    something. Raises InstanceNotFound, InvalidInput."""
    hostname.check_text(dest, "host")
    with db.write() as conn:
        inst = _instance_row(conn, ident)
        changed = forget(conn, inst.uuid)
        if inst.host != dest:
            conn.execute(
                update(rows.INSTANCES)
                .where(rows.INSTANCES.c.id == inst.id)
                .values(host=dest, updated_at=rows.now())
            )
            changed = True
        if changed:
            secgroups.bump(conn, [inst.uuid])
        return changed


def migration_abort(db: Database, ident: str, dest: str | None = None) -> bool:
    """Roll back a migration (to ``dest`` when given): the destination's
    filter goes, the source keeps its own. True when this wrote
    something; False for an instance deleted already (its migration
    ended with it)."""
    with db.write() as conn:
        try:
            inst = _instance_row(conn, ident)
        except exception.InstanceNotFound:
            return False
        row = _row(conn, inst.uuid)
        if row is None or (dest is not None and row.dest_compute != dest):
            return False
        forget(conn, inst.uuid)
        secgroups.bump(conn, [inst.uuid])
        return True
