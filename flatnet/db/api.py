"""The database API: the only query surface of flatnet.

Everything outside :mod:`flatnet.db` talks to the database through the
functions here, which take a :class:`Database` and return
:mod:`flatnet.model` objects. Each call is one short transaction; nothing
is held open across I/O. The queries live in this module and in its
private helpers (:mod:`flatnet.db.allocation`, :mod:`flatnet.db.leases`,
:mod:`flatnet.db.floating`), re-exported here. Unique-constraint errors
become flatnet Conflicts in :func:`flatnet.db.engine.translate_errors`.

Every change a host must apply (hosts file, rules) bumps
``networks.generation`` of the networks concerned, in the same
transaction.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import netaddr
from sqlalchemy import insert, or_, select, update

from flatnet import exception, model
from flatnet.db import rows, sqlite_files
from flatnet.db.engine import Database, sqlite_path
from flatnet.db.networks import (
    network_create,
    network_delete,
    network_generations,
    network_get,
    network_list,
    network_set_host,
)
from flatnet.db.rows import (
    GENERATIONS,
    HOST_STATE,
    INSTANCES,
    network_key,
)
from flatnet.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from flatnet.db.allocation import (
        InstanceSpec,
        VifRequest,
        allocate_fixed_ip,
        deallocate_for_instance,
        instance_create_allocated,
        network_info,
    )
    from flatnet.db.dhcp_delta import shard_read, sharded_networks
    from flatnet.db.dhcp_reads import host_entries, leases
    from flatnet.db.firewall_delta import HostFirewallReader
    from flatnet.db.firewall_read import host_instances, instance_key
    from flatnet.db.firewall_state import host_firewall
    from flatnet.db.fixed import (
        FixedIpFilter,
        FixedIpSummary,
        fixed_ip_list,
        fixed_ip_set_reserved,
        fixed_ip_summary,
    )
    from flatnet.db.floating import (
        FloatingDeleted,
        floating_associate,
        floating_associate_from_pool,
        floating_create,
        floating_delete,
        floating_disassociate,
        floating_for_host,
        floating_list,
        rules_generation,
    )
    from flatnet.db.leases import (
        JournalBatch,
        apply_lease_events,
        apply_lease_journals,
        disassociate_stale_fixed_ips,
        expire_leases,
        journal_invalid_lines,
        journal_offset,
        journal_offsets,
    )
    from flatnet.db.live_migration import (
        LiveMigration,
        migration_abort,
        migration_begin,
        migration_finish,
        migration_get,
    )
    from flatnet.db.metadata import instance_metadata, metadata_generation
    from flatnet.db.secgroup_members import (
        firewall_generation,
        instance_add_secgroup,
        instance_remove_secgroup,
        instance_secgroups,
        instance_set_host,
    )
    from flatnet.db.secgroup_rules import (
        RuleSpec,
        secgroup_rule_add,
        secgroup_rule_delete,
    )
    from flatnet.db.secgroups import (
        SecurityGroupInfo,
        secgroup_create,
        secgroup_delete,
        secgroup_get,
        secgroup_list,
    )
    from flatnet.db.shards import ensure_shards, shard_list


#: name -> the private module defining it, imported on first use (PEP
#: 562): a command pays only for the queries it runs (``flatnet-manage
#: network list`` loads no allocation, security group or lease code).
_LAZY = {
    name: home
    for home, names in (
        ("allocation", "InstanceSpec VifRequest allocate_fixed_ip "
         "deallocate_for_instance instance_create_allocated network_info"),
        ("dhcp_delta", "shard_read sharded_networks"),
        ("firewall_delta", "HostFirewallReader"),
        ("firewall_read", "host_instances instance_key"),
        ("firewall_state", "host_firewall"),
        ("fixed", "FixedIpFilter FixedIpSummary fixed_ip_list "
         "fixed_ip_set_reserved fixed_ip_summary"),
        ("floating", "FloatingDeleted floating_associate "
         "floating_associate_from_pool floating_create floating_delete "
         "floating_disassociate floating_for_host floating_list "
         "rules_generation"),
        ("leases", "JournalBatch apply_lease_events apply_lease_journals "
         "disassociate_stale_fixed_ips expire_leases "
         "journal_invalid_lines journal_offset journal_offsets"),
        ("dhcp_reads", "host_entries leases"),
        ("live_migration", "LiveMigration migration_abort migration_begin "
         "migration_finish migration_get"),
        ("metadata", "instance_metadata metadata_generation"),
        ("secgroup_members", "firewall_generation instance_add_secgroup "
         "instance_remove_secgroup instance_secgroups instance_set_host"),
        ("secgroup_rules", "RuleSpec secgroup_rule_add secgroup_rule_delete"),
        ("secgroups", "SecurityGroupInfo secgroup_create secgroup_delete "
         "secgroup_get secgroup_list"),
        ("shards", "ensure_shards shard_list"),
    )
    for name in names.split()
}  # fmt: skip


__getattr__, __dir__ = lazy_exports(__name__, "flatnet.db", _LAZY)


__all__ = [
    "Database", "FixedIpFilter", "FixedIpSummary", "FloatingDeleted",
    "InstanceSpec", "KeyState", "RuleSpec", "SecurityGroupInfo",
    "VifRequest", "allocate_fixed_ip", "apply_lease_events",
    "JournalBatch", "apply_lease_journals", "journal_offsets",
    "deallocate_for_instance", "disassociate_stale_fixed_ips",
    "ensure_shards", "expire_leases", "shard_list",
    "shard_read", "sharded_networks", "LiveMigration",
    "migration_abort", "migration_begin", "migration_finish",
    "migration_get", "HostFirewallReader",
    "firewall_generation", "fixed_ip_list", "fixed_ip_set_reserved",
    "fixed_ip_summary", "floating_associate",
    "floating_associate_from_pool", "floating_create", "floating_delete",
    "floating_disassociate", "floating_for_host", "floating_list",
    "generations", "host_entries", "host_firewall", "host_instances",
    "host_state", "host_state_get", "host_state_record", "host_state_set",
    "instance_add_secgroup", "instance_create",
    "instance_create_allocated", "instance_get", "instance_key",
    "instance_list", "instance_metadata", "instance_remove_secgroup",
    "instance_secgroups", "instance_set_host", "journal_invalid_lines",
    "journal_offset", "lease_fixed_ip", "leases", "metadata_generation",
    "network_create", "network_delete", "network_generations",
    "network_get", "network_info", "network_key", "network_list",
    "network_set_host", "release_fixed_ip", "rules_generation",
    "schema_version", "secgroup_create", "secgroup_delete", "secgroup_get",
    "secgroup_list", "secgroup_rule_add", "secgroup_rule_delete", "sync",
]  # fmt: skip

LOG = logging.getLogger(__name__)


def sync(db: Database) -> None:
    """Create or upgrade the schema (alembic upgrade head); a SQLite
    file readable by others (older flatnet) is made 0600."""
    # alembic is imported only by the commands that migrate.
    from flatnet.db import migration  # noqa: PLC0415

    with db.translated():
        migration.upgrade(db)
    path = sqlite_path(db.url)
    if path is not None:
        sqlite_files.tighten(path)


def schema_version(db: Database) -> str | None:
    """The schema revision of ``db``, None for an empty database."""
    from flatnet.db import migration  # noqa: PLC0415

    with db.translated():
        return migration.current(db)


# --- instances ----------------------------------------------------------
def instance_create(
    db: Database,
    *,
    hostname: str,
    display_name: str,
    host: str | None,
    project_id: str | None = None,
    uuid: str | None = None,
) -> model.Instance:
    """An instance without interfaces (in no security group). Raises
    DuplicateInstance."""
    from flatnet.db import secgroups  # noqa: PLC0415 - see _LAZY
    from flatnet.db.allocation import InstanceSpec, insert_instance  # noqa: PLC0415

    spec = InstanceSpec(
        hostname=hostname,
        display_name=display_name,
        host=host,
        project_id=project_id,
        uuid=uuid,
    )
    with db.write() as conn:
        instance = insert_instance(conn, spec)
        secgroups.bump(conn, [instance.uuid])
        return instance


def instance_get(db: Database, ident: str) -> model.Instance:
    """A live instance by uuid or host name. Raises InstanceNotFound."""
    with db.read() as conn:
        row = conn.execute(
            select(INSTANCES).where(
                INSTANCES.c.deleted == 0,
                or_(
                    INSTANCES.c.uuid == ident,
                    INSTANCES.c.hostname == str(ident).lower(),
                ),
            )
        ).first()
    if row is None:
        raise exception.InstanceNotFound(instance=ident)
    return rows.to_instance(row)


def instance_list(
    db: Database, host: str | None = None
) -> list[model.Instance]:
    query = select(INSTANCES).where(INSTANCES.c.deleted == 0)
    if host is not None:
        query = query.where(INSTANCES.c.host == host)
    with db.read() as conn:
        found = conn.execute(query.order_by(INSTANCES.c.id)).all()
    return [rows.to_instance(r) for r in found]


# --- DHCP callbacks -----------------------------------------------------
def lease_fixed_ip(
    db: Database, address: netaddr.IPAddress, mac: netaddr.EUI | None
) -> None:
    """nova ``lease_fixed_ip`` (one transaction)."""
    from flatnet.db.leases import lease  # noqa: PLC0415 - see _LAZY

    with db.write() as conn:
        lease(conn, address, mac)


def release_fixed_ip(
    db: Database, address: netaddr.IPAddress, mac: netaddr.EUI | None
) -> None:
    """nova ``release_fixed_ip`` (one transaction)."""
    from flatnet.db.leases import release  # noqa: PLC0415 - see _LAZY

    with db.write() as conn:
        release(conn, address, mac)


# --- readiness ----------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class KeyState:
    """What a host reported for one readiness key of one component."""

    applied_generation: int
    updated_at: datetime.datetime | None
    last_error: str | None


def host_state_record(
    db: Database,
    host: str,
    component: str,
    applied: Mapping[str, int] | None = None,
    errors: Mapping[str, str] | None = None,
) -> None:
    """One transaction: ``applied`` keys reached these generations (their
    error is cleared); ``errors`` keys could not be applied, and why."""
    now = rows.now()
    with db.write() as conn:
        for key, generation in sorted((applied or {}).items()):
            rows.upsert(
                conn,
                HOST_STATE,
                {"host": host, "component": component, "key": key},
                {
                    "applied_generation": generation,
                    "updated_at": now,
                    "last_error": None,
                },
            )
        for key, error in sorted((errors or {}).items()):
            _record_error(conn, host, component, key, error[:2000])


def _record_error(
    conn: Any, host: str, component: str, key: str, error: str
) -> None:
    where = (
        HOST_STATE.c.host == host,
        HOST_STATE.c.component == component,
        HOST_STATE.c.key == key,
    )
    done = conn.execute(
        update(HOST_STATE)
        .where(*where)
        .values(last_error=error, updated_at=rows.now())
    )
    if done.rowcount == 0:
        conn.execute(
            insert(HOST_STATE).values(
                host=host,
                component=component,
                key=key,
                applied_generation=0,
                updated_at=rows.now(),
                last_error=error,
            )
        )


def host_state(
    db: Database, host: str, component: str, key: str
) -> KeyState | None:
    """What ``host`` reported for ``key`` of ``component`` (None: never)."""
    with db.read() as conn:
        row = conn.execute(
            select(HOST_STATE).where(
                HOST_STATE.c.host == host,
                HOST_STATE.c.component == component,
                HOST_STATE.c.key == key,
            )
        ).first()
    if row is None:
        return None
    return KeyState(
        int(row.applied_generation), row.updated_at, row.last_error
    )


def host_state_set(
    db: Database, host: str, network_id: int, component: str, generation: int
) -> None:
    """Record that ``host`` applied ``generation`` of a network's
    ``component`` (key ``network:<id>``)."""
    key = rows.network_key(network_id)
    host_state_record(db, host, component, applied={key: generation})


def host_state_get(
    db: Database, host: str, network_id: int, component: str
) -> int:
    """The generation of a network ``host`` last applied, 0 if never."""
    state = host_state(db, host, component, rows.network_key(network_id))
    return 0 if state is None else state.applied_generation


def generations(db: Database, prefix: str = "") -> dict[str, int]:
    """Scope -> generation of the scopes starting with ``prefix``."""
    with db.read() as conn:
        found = conn.execute(
            select(GENERATIONS.c.scope, GENERATIONS.c.generation).where(
                GENERATIONS.c.scope.startswith(prefix, autoescape=True)
            )
        ).all()
    return {r.scope: int(r.generation) for r in found}
