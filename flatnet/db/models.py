"""Table definitions (SQLAlchemy 2 declarative).

Column names follow nova's schema (nova/db/sqlalchemy/models.py) so that a
nova-network database can be imported column for column. Soft-deletable
tables use nova's convention: ``deleted`` is 0 for a live row and the row's
own id once deleted, so ``UNIQUE(address, deleted)`` allows one live row per
address plus any number of deleted ones, on SQLite, PostgreSQL and MySQL.

The unique constraints are what make a double allocation impossible at the
database level: ``fixed_ips(address, deleted)``,
``virtual_interfaces(address, deleted)`` (MAC),
``virtual_interfaces(instance_uuid, network_id, deleted)``,
``floating_ips(address, deleted)``, ``instances(hostname, deleted)``.
"""

from __future__ import annotations

import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    literal_column,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TimestampMixin:
    created_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


class SoftDeleteMixin:
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    deleted: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class Network(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "networks"
    __table_args__ = (
        UniqueConstraint("label", "deleted", name="uniq_networks0label"),
        UniqueConstraint("cidr", "deleted", name="uniq_networks0cidr"),
        # One live network per bridge: dnsmasq files are keyed by bridge.
        UniqueConstraint(
            "bridge", "deleted", name="uniq_networks0bridge0deleted"
        ),
        Index("networks_host_idx", "host"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    label: Mapped[str] = mapped_column(String(255), nullable=False)
    injected: Mapped[bool] = mapped_column(Boolean, default=False)
    cidr: Mapped[str] = mapped_column(String(43), nullable=False)
    cidr_v6: Mapped[str | None] = mapped_column(String(43))
    multi_host: Mapped[bool] = mapped_column(Boolean, default=False)
    gateway_v6: Mapped[str | None] = mapped_column(String(39))
    netmask_v6: Mapped[str | None] = mapped_column(String(39))
    netmask: Mapped[str | None] = mapped_column(String(39))
    gateway: Mapped[str | None] = mapped_column(String(39))
    broadcast: Mapped[str | None] = mapped_column(String(39))
    dns1: Mapped[str | None] = mapped_column(String(39))
    dns2: Mapped[str | None] = mapped_column(String(39))
    bridge: Mapped[str] = mapped_column(String(255), nullable=False)
    bridge_interface: Mapped[str | None] = mapped_column(String(255))
    vlan: Mapped[int | None] = mapped_column(Integer)
    dhcp_start: Mapped[str | None] = mapped_column(String(39))
    rxtx_base: Mapped[int | None] = mapped_column(Integer)
    project_id: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    mtu: Mapped[int | None] = mapped_column(Integer)
    dhcp_server: Mapped[str | None] = mapped_column(String(39))
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    share_address: Mapped[bool] = mapped_column(Boolean, default=False)
    # flatnet: bumped in the same transaction as every change that a host
    # must apply (hosts file, rules); hosts record what they applied.
    generation: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class Instance(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint(
            "hostname", "deleted", name="uniq_instances0hostname0deleted"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    display_name: Mapped[str] = mapped_column(String(255), nullable=False)
    host: Mapped[str | None] = mapped_column(String(255))
    launched_on: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    # metadata service (later issue): keys, user data, AZ.
    key_name: Mapped[str | None] = mapped_column(String(255))
    key_data: Mapped[str | None] = mapped_column(Text)
    user_data: Mapped[str | None] = mapped_column(Text)
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    image_ref: Mapped[str | None] = mapped_column(String(255))
    launch_index: Mapped[int | None] = mapped_column(Integer)


class VirtualInterface(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "virtual_interfaces"
    __table_args__ = (
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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(255), nullable=False)
    network_id: Mapped[int] = mapped_column(
        ForeignKey("networks.id"), nullable=False
    )
    instance_uuid: Mapped[str] = mapped_column(
        ForeignKey("instances.uuid"), nullable=False
    )
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    tag: Mapped[str | None] = mapped_column(String(255))


class FixedIp(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "fixed_ips"
    __table_args__ = (
        UniqueConstraint(
            "address", "deleted", name="uniq_fixed_ips0address0deleted"
        ),
        # One fixed IP per VIF: a VIF can never hold two addresses.
        UniqueConstraint(
            "virtual_interface_id",
            "deleted",
            name="uniq_fixed_ips0vif0deleted",
        ),
        # The allocation query's partial indexes are defined after the
        # class (fixed_ips_never_used_idx, fixed_ips_lru_idx).
        Index("fixed_ips_instance_uuid_idx", "instance_uuid"),
        Index(
            "fixed_ips_deleted_allocated_updated_at_idx",
            "deleted",
            "allocated",
            "updated_at",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(39), nullable=False)
    network_id: Mapped[int] = mapped_column(
        ForeignKey("networks.id"), nullable=False
    )
    virtual_interface_id: Mapped[int | None] = mapped_column(
        ForeignKey("virtual_interfaces.id")
    )
    instance_uuid: Mapped[str | None] = mapped_column(
        ForeignKey("instances.uuid")
    )
    allocated: Mapped[bool] = mapped_column(
        Boolean, default=False, nullable=False
    )
    leased: Mapped[bool] = mapped_column(
        Boolean, default=False, nullable=False
    )
    reserved: Mapped[bool] = mapped_column(
        Boolean, default=False, nullable=False
    )
    host: Mapped[str | None] = mapped_column(String(255))


def fixed_ip_is_free() -> ColumnElement[bool]:
    """A fixed IP that the pool may hand out (nova's associate_pool).

    The claim query uses this exact expression, so that SQLite, which
    matches partial-index predicates term by term, uses the indexes below.
    """
    return and_(
        FixedIp.deleted == literal_column("0"),
        FixedIp.reserved == false(),
        FixedIp.leased == false(),
        FixedIp.instance_uuid.is_(None),
        FixedIp.host.is_(None),
    )


# The allocation query, oldest first: never-used rows by id, then least
# recently used. Partial indexes hold only free rows, and each half is an
# ordered walk with an equality prefix on both SQLite and PostgreSQL
# (PostgreSQL cannot order by a column after an IS NULL condition, and
# SQLite has no NULLS FIRST in CREATE INDEX).
Index(
    "fixed_ips_never_used_idx",
    FixedIp.network_id,
    FixedIp.id,
    sqlite_where=and_(fixed_ip_is_free(), FixedIp.updated_at.is_(None)),
    postgresql_where=and_(fixed_ip_is_free(), FixedIp.updated_at.is_(None)),
)
Index(
    "fixed_ips_lru_idx",
    FixedIp.network_id,
    FixedIp.updated_at,
    FixedIp.id,
    sqlite_where=and_(fixed_ip_is_free(), FixedIp.updated_at.is_not(None)),
    postgresql_where=and_(fixed_ip_is_free(), FixedIp.updated_at.is_not(None)),
)


class FloatingIp(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "floating_ips"
    __table_args__ = (
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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(39), nullable=False)
    fixed_ip_id: Mapped[int | None] = mapped_column(ForeignKey("fixed_ips.id"))
    project_id: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    auto_assigned: Mapped[bool] = mapped_column(
        Boolean, default=False, nullable=False
    )
    pool: Mapped[str] = mapped_column(String(255), nullable=False)
    interface: Mapped[str | None] = mapped_column(String(255))


class SecurityGroup(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "security_groups"
    __table_args__ = (
        UniqueConstraint(
            "project_id",
            "name",
            "deleted",
            name="uniq_security_groups0project_id0name0deleted",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))


class SecurityGroupRule(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "security_group_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_group_id: Mapped[int] = mapped_column(
        ForeignKey("security_groups.id"), nullable=False
    )
    protocol: Mapped[str | None] = mapped_column(String(255))
    from_port: Mapped[int | None] = mapped_column(Integer)
    to_port: Mapped[int | None] = mapped_column(Integer)
    cidr: Mapped[str | None] = mapped_column(String(43))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("security_groups.id")
    )


class SecurityGroupInstanceAssociation(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "security_group_instance_association"
    __table_args__ = (
        UniqueConstraint(
            "security_group_id",
            "instance_uuid",
            "deleted",
            name="uniq_sgia0group0instance0deleted",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    security_group_id: Mapped[int] = mapped_column(
        ForeignKey("security_groups.id"), nullable=False
    )
    instance_uuid: Mapped[str] = mapped_column(
        ForeignKey("instances.uuid"), nullable=False
    )


class HostState(Base):
    """flatnet: what each host has applied, for "ready" waits.

    One row per ``(host, component, key)``: ``component`` is e.g. ``dhcp``
    or ``rules``, ``key`` what was applied (``network:3``; later
    ``instance:<uuid>``), ``applied_generation`` the generation of that
    key the host had made live, ``last_error`` why the host could not
    apply a newer one (NULL once it did).
    """

    __tablename__ = "host_state"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    component: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    applied_generation: Mapped[int] = mapped_column(
        BigInteger, default=0, nullable=False
    )
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class LeaseJournal(Base):
    """flatnet: how far each host has applied each DHCP event journal.

    Written in the same transaction as the lease changes the events caused,
    so a crash between the two can neither lose nor replay an event.
    ``invalid_lines`` counts lines that were not a valid event (torn or
    garbage) and were skipped.
    """

    __tablename__ = "lease_journals"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    inode: Mapped[int] = mapped_column(BigInteger, nullable=False)
    offset: Mapped[int] = mapped_column(BigInteger, nullable=False)
    invalid_lines: Mapped[int] = mapped_column(
        BigInteger, default=0, nullable=False
    )


class Generation(Base):
    """flatnet: keyed generation counters (``rules`` for floating IPs;
    later ``instance:<uuid>``...), bumped in the same transaction as the
    change they announce. A network's generation is
    ``networks.generation``."""

    __tablename__ = "generations"

    scope: Mapped[str] = mapped_column(String(255), primary_key=True)
    generation: Mapped[int] = mapped_column(
        BigInteger, default=0, nullable=False
    )
