"""Table definitions (SQLAlchemy Core).

Column names follow nova's schema (nova/db/sqlalchemy/models.py) so that a
nova-network database can be imported column for column. Soft-deletable
tables use nova's convention: ``deleted`` is 0 for a live row and the row's
own id once deleted, so ``UNIQUE(address, deleted)`` allows one live row per
address plus any number of deleted ones, on SQLite, PostgreSQL and MySQL.

The unique constraints are what make a double allocation impossible at the
database level: ``fixed_ips(address, deleted)``, ``virtual_interfaces``
``(address, deleted)`` (MAC) and ``(instance_uuid, network_id, deleted)``,
``floating_ips(address, deleted)``, ``instances(hostname, deleted)``.

Plain ``Table`` objects (the ORM cost every CLI call ~0.25 s of imports);
:func:`schema` attaches the partial indexes (their dialects) for DDL.
"""

from __future__ import annotations

import functools

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
    literal_column,
)

metadata = MetaData()


def _timestamps() -> tuple[Column[object], ...]:
    return (Column("created_at", DateTime), Column("updated_at", DateTime))


def _soft_delete() -> tuple[Column[object], ...]:
    return (
        Column("deleted_at", DateTime),
        Column("deleted", Integer, default=0, nullable=False),
    )


NETWORKS = Table(
    "networks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("label", String(255), nullable=False),
    Column("injected", Boolean, default=False, nullable=False),
    Column("cidr", String(43), nullable=False),
    Column("cidr_v6", String(43)),
    Column("multi_host", Boolean, default=False, nullable=False),
    Column("gateway_v6", String(39)),
    Column("netmask_v6", String(39)),
    Column("netmask", String(39)),
    Column("gateway", String(39)),
    Column("broadcast", String(39)),
    Column("dns1", String(39)),
    Column("dns2", String(39)),
    Column("bridge", String(255), nullable=False),
    Column("bridge_interface", String(255)),
    Column("vlan", Integer),
    Column("dhcp_start", String(39)),
    Column("rxtx_base", Integer),
    Column("project_id", String(255)),
    Column("priority", Integer),
    Column("host", String(255)),
    Column("mtu", Integer),
    Column("dhcp_server", String(39)),
    Column("enable_dhcp", Boolean, default=True, nullable=False),
    Column("share_address", Boolean, default=False, nullable=False),
    # flatnet: bumped in the same transaction as every change that a host
    # must apply (hosts file, rules); hosts record what they applied.
    Column("generation", Integer, default=0, nullable=False),
    *_timestamps(),
    *_soft_delete(),
    UniqueConstraint("label", "deleted", name="uniq_networks0label"),
    UniqueConstraint("cidr", "deleted", name="uniq_networks0cidr"),
    # One live network per bridge: dnsmasq files are keyed by bridge.
    UniqueConstraint("bridge", "deleted", name="uniq_networks0bridge0deleted"),
    Index("networks_host_idx", "host"),
)


INSTANCES = Table(
    "instances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("hostname", String(255), nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("host", String(255)),
    Column("launched_on", String(255)),
    Column("project_id", String(255)),
    Column("user_id", String(255)),
    # served by flatnet-metadata: keys, user data (base64), AZ.
    Column("key_name", String(255)),
    Column("key_data", Text),
    Column("user_data", Text),
    Column("availability_zone", String(255)),
    Column("image_ref", String(255)),
    Column("launch_index", Integer),
    *_timestamps(),
    *_soft_delete(),
    UniqueConstraint(
        "hostname", "deleted", name="uniq_instances0hostname0deleted"
    ),
)


VIFS = Table(
    "virtual_interfaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(255), nullable=False),
    Column("network_id", ForeignKey("networks.id"), nullable=False),
    Column("instance_uuid", ForeignKey("instances.uuid"), nullable=False),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("tag", String(255)),
    *_timestamps(),
    *_soft_delete(),
    UniqueConstraint(
        "address",
        "deleted",
        name="uniq_virtual_interfaces0address0deleted",
    ),
    UniqueConstraint(
        "instance_uuid",
        "network_id",
        "deleted",
        name="uniq_vifs0instance0network0deleted",
    ),
)


FIXED = Table(
    "fixed_ips",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(39), nullable=False),
    Column("network_id", ForeignKey("networks.id"), nullable=False),
    Column("virtual_interface_id", ForeignKey("virtual_interfaces.id")),
    Column("instance_uuid", ForeignKey("instances.uuid")),
    Column("allocated", Boolean, default=False, nullable=False),
    Column("leased", Boolean, default=False, nullable=False),
    Column("reserved", Boolean, default=False, nullable=False),
    Column("host", String(255)),
    # flatnet: the DHCP shard that serves this address (sharded networks
    # only; stored at allocation, never recomputed) and that shard's
    # generation when this row last changed what it serves (db/shards).
    Column("dhcp_shard", Integer),
    Column("dhcp_gen", BigInteger),
    *_timestamps(),
    *_soft_delete(),
    UniqueConstraint(
        "address", "deleted", name="uniq_fixed_ips0address0deleted"
    ),
    # One fixed IP per VIF: a VIF can never hold two addresses.
    UniqueConstraint(
        "virtual_interface_id",
        "deleted",
        name="uniq_fixed_ips0vif0deleted",
    ),
    # schema() attaches fixed_ips_never_used_idx and fixed_ips_lru_idx.
    Index("fixed_ips_instance_uuid_idx", "instance_uuid"),
    Index("fixed_ips_dhcp_idx", "network_id", "dhcp_shard", "dhcp_gen"),
    Index(
        "fixed_ips_deleted_allocated_updated_at_idx",
        "deleted",
        "allocated",
        "updated_at",
    ),
)


FLOATING = Table(
    "floating_ips",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(39), nullable=False),
    Column("fixed_ip_id", ForeignKey("fixed_ips.id")),
    Column("project_id", String(255)),
    Column("host", String(255)),
    Column("auto_assigned", Boolean, default=False, nullable=False),
    Column("pool", String(255), nullable=False),
    Column("interface", String(255)),
    *_timestamps(),
    *_soft_delete(),
    UniqueConstraint(
        "address", "deleted", name="uniq_floating_ips0address0deleted"
    ),
    # A fixed IP carries at most one floating IP.
    UniqueConstraint(
        "fixed_ip_id",
        "deleted",
        name="uniq_floating_ips0fixed_ip_id0deleted",
    ),
    Index(
        "floating_ips_pool_deleted_fixed_ip_id_project_id_idx",
        "pool",
        "deleted",
        "fixed_ip_id",
        "project_id",
    ),
)


SECURITY_GROUPS = Table(
    "security_groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", String(255)),
    Column("user_id", String(255)),
    Column("project_id", String(255)),
    *_timestamps(),
    *_soft_delete(),
    UniqueConstraint(
        "project_id",
        "name",
        "deleted",
        name="uniq_security_groups0project_id0name0deleted",
    ),
)


SECURITY_GROUP_RULES = Table(
    "security_group_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "parent_group_id", ForeignKey("security_groups.id"), nullable=False
    ),
    Column("protocol", String(255)),
    Column("from_port", Integer),
    Column("to_port", Integer),
    Column("cidr", String(43)),
    Column("group_id", ForeignKey("security_groups.id")),
    *_timestamps(),
    *_soft_delete(),
)


SECURITY_GROUP_INSTANCES = Table(
    "security_group_instance_association",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "security_group_id", ForeignKey("security_groups.id"), nullable=False
    ),
    Column("instance_uuid", ForeignKey("instances.uuid"), nullable=False),
    *_timestamps(),
    *_soft_delete(),
    UniqueConstraint(
        "security_group_id",
        "instance_uuid",
        "deleted",
        name="uniq_sgia0group0instance0deleted",
    ),
)


# flatnet: what each host has applied, for "ready" waits: per (host,
# component e.g. ``dhcp``, key e.g. ``network:3``) the generation made
# live, and ``last_error`` why a newer one was not (NULL once it was).
HOST_STATE = Table(
    "host_state",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("component", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("applied_generation", BigInteger, default=0, nullable=False),
    Column("updated_at", DateTime),
    Column("last_error", Text),
)


# flatnet: how far each host has applied each DHCP event journal, in the
# transaction of the lease changes the events caused (a crash can neither
# lose nor replay one); ``invalid_lines``: torn or garbage lines skipped.
JOURNALS = Table(
    "lease_journals",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("inode", BigInteger, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("invalid_lines", BigInteger, default=0, nullable=False),
)


# flatnet: keyed generation counters (``rules``, ``firewall``...), bumped
# in the transaction of the change they announce (networks: their own).
GENERATIONS = Table(
    "generations",
    metadata,
    Column("scope", String(255), primary_key=True),
    Column("generation", BigInteger, default=0, nullable=False),
)


# flatnet: the DHCP shards of a large network (one dnsmasq each, in a
# namespace of its own); ``address`` is reserved in fixed_ips.
DHCP_SHARDS = Table(
    "dhcp_shards",
    metadata,
    Column("network_id", ForeignKey("networks.id"), primary_key=True),
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("address", String(39), nullable=False),
    # +1: per allocation (re-counted by ensure_shards) / per change served
    Column("hosts", Integer, default=0, nullable=False),
    Column("generation", BigInteger, default=0, nullable=False),
)


# flatnet: live migrations in progress (nova ``migrations``, reduced): the
# instance is filtered on both ``instances.host`` and ``dest_compute``
# (nova: pre_live_migration .. _post_live_migration) until
# migrate_instance_finish moves the host and deletes it (doc/hooks.md).
LIVE_MIGRATIONS = Table(
    "live_migrations",
    metadata,
    Column("instance_uuid", ForeignKey("instances.uuid"), primary_key=True),
    Column("source_compute", String(255)),
    Column("dest_compute", String(255), nullable=False, index=True),
    Column("created_at", DateTime),
)


#: What each ``firewall`` generation changed (insert-only log, written
#: with the bump): an instance or a group whose rules changed. Compute
#: hosts read the rows above what they applied (doc/firewall.md).
FIREWALL_CHANGES = Table(
    "firewall_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False),
    Column("instance_uuid", String(36)),
    Column("group_id", Integer),
    Index("firewall_changes_generation_idx", "generation"),
)


def fixed_ip_is_free() -> ColumnElement[bool]:
    """A fixed IP that the pool may hand out (nova's associate_pool).

    The claim query uses this exact expression, so that SQLite, which
    matches partial-index predicates term by term, uses the indexes below.
    """
    c = FIXED.c
    return and_(
        c.deleted == literal_column("0"),
        c.reserved == false(),
        c.leased == false(),
        c.instance_uuid.is_(None),
        c.host.is_(None),
    )


@functools.cache
def schema() -> MetaData:
    """The full schema, with the allocation query's partial indexes.

    The allocation query, oldest first: never-used rows by id, then least
    recently used. Partial indexes hold only free rows, and each half is
    an ordered walk with an equality prefix on both SQLite and PostgreSQL
    (PostgreSQL cannot order by a column after an IS NULL condition, and
    SQLite has no NULLS FIRST in CREATE INDEX).
    """
    c = FIXED.c
    never = and_(fixed_ip_is_free(), c.updated_at.is_(None))
    used = and_(fixed_ip_is_free(), c.updated_at.is_not(None))
    Index(
        "fixed_ips_never_used_idx",
        c.network_id,
        c.id,
        sqlite_where=never,
        postgresql_where=never,
    )
    Index(
        "fixed_ips_lru_idx",
        c.network_id,
        c.updated_at,
        c.id,
        sqlite_where=used,
        postgresql_where=used,
    )
    return metadata
