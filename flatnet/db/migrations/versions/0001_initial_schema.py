"""Initial schema: every table of flatnet.db.models.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 02:29:51.555322

A migration is a frozen snapshot: it does not import flatnet.db.models,
so later model changes need a new revision, never an edit here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Tables in creation order (downgrade drops them in reverse).
TABLES = (
    "counters", "host_state", "lease_journal_offsets", "instances",
    "networks", "security_groups", "security_group_instance_association",
    "security_group_rules", "virtual_interfaces", "fixed_ips",
    "floating_ips",
)  # fmt: skip


def _str(name: str, length: int = 255, null: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=null)


def _int(name: str, null: bool = True) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=null)


def _bool(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean(), nullable=False)


def _audit() -> list[sa.Column]:
    """nova's timestamps and soft delete (``deleted`` = own id)."""
    return [
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        _int("deleted", null=False),
    ]


def _unique_live(*columns: str, name: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, "deleted", name=name)


def _free_rows(never_used: bool) -> dict[str, Any]:
    """Partial-index predicate of free fixed IPs (db.rows.fixed_ip_is_free)
    for both dialects; ``never_used`` selects updated_at IS NULL."""
    used = "IS NULL" if never_used else "IS NOT NULL"
    where = (
        "deleted = 0 AND reserved = {f} AND leased = {f} AND "
        f"instance_uuid IS NULL AND host IS NULL AND updated_at {used}"
    )
    return {
        "sqlite_where": sa.text(where.format(f="0")),
        "postgresql_where": sa.text(where.format(f="false")),
    }


def _create_bookkeeping() -> None:
    op.create_table(
        "counters",
        _str("name", 64, null=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "host_state",
        _str("host", null=False),
        _int("network_id", null=False),
        _str("component", 32, null=False),
        _int("applied_generation", null=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("host", "network_id", "component"),
    )
    op.create_table(
        "lease_journal_offsets",
        _str("path", 1024, null=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("path"),
    )


def _create_instances() -> None:
    op.create_table(
        "instances",
        _int("id", null=False),
        _str("uuid", 36, null=False),
        _str("hostname", null=False),
        _str("display_name", null=False),
        *(_str(c) for c in ("host", "launched_on", "project_id",
                            "user_id", "key_name")),
        sa.Column("key_data", sa.Text(), nullable=True),
        sa.Column("user_data", sa.Text(), nullable=True),
        _str("availability_zone"),
        _str("image_ref"),
        _int("launch_index"),
        *_audit(),
        sa.PrimaryKeyConstraint("id"),
        _unique_live("hostname", name="uniq_instances0hostname0deleted"),
        sa.UniqueConstraint("uuid"),
    )  # fmt: skip


def _create_networks() -> None:
    addresses = ("gateway_v6", "netmask_v6", "netmask", "gateway",
                 "broadcast", "dns1", "dns2")  # fmt: skip
    op.create_table(
        "networks",
        _int("id", null=False),
        _str("uuid", 36, null=False),
        _str("label", null=False),
        _bool("injected"),
        _str("cidr", 43, null=False),
        _str("cidr_v6", 43),
        _bool("multi_host"),
        *(_str(c, 39) for c in addresses),
        _str("bridge", null=False),
        _str("bridge_interface"),
        _int("vlan"),
        _str("dhcp_start", 39),
        _int("rxtx_base"),
        _str("project_id"),
        _int("priority"),
        _str("host"),
        _int("mtu"),
        _str("dhcp_server", 39),
        _bool("enable_dhcp"),
        _bool("share_address"),
        _int("generation", null=False),
        *_audit(),
        sa.PrimaryKeyConstraint("id"),
        _unique_live("bridge", name="uniq_networks0bridge0deleted"),
        _unique_live("cidr", name="uniq_networks0cidr"),
        _unique_live("label", name="uniq_networks0label"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index("networks_host_idx", "networks", ["host"])


def _create_security_groups() -> None:
    op.create_table(
        "security_groups",
        _int("id", null=False),
        _str("name", null=False),
        *(_str(c) for c in ("description", "user_id", "project_id")),
        *_audit(),
        sa.PrimaryKeyConstraint("id"),
        _unique_live("project_id", "name",
                     name="uniq_security_groups0project_id0name0deleted"),
    )  # fmt: skip
    op.create_table(
        "security_group_instance_association",
        _int("id", null=False),
        _int("security_group_id", null=False),
        _str("instance_uuid", 36, null=False),
        *_audit(),
        sa.ForeignKeyConstraint(["instance_uuid"], ["instances.uuid"]),
        sa.ForeignKeyConstraint(["security_group_id"],
                                ["security_groups.id"]),
        sa.PrimaryKeyConstraint("id"),
        _unique_live("security_group_id", "instance_uuid",
                     name="uniq_sgia0group0instance0deleted"),
    )  # fmt: skip
    op.create_table(
        "security_group_rules",
        _int("id", null=False),
        _int("parent_group_id", null=False),
        _str("protocol"),
        _int("from_port"),
        _int("to_port"),
        _str("cidr", 43),
        _int("group_id"),
        *_audit(),
        sa.ForeignKeyConstraint(["group_id"], ["security_groups.id"]),
        sa.ForeignKeyConstraint(["parent_group_id"], ["security_groups.id"]),
        sa.PrimaryKeyConstraint("id"),
    )


def _create_vifs() -> None:
    op.create_table(
        "virtual_interfaces",
        _int("id", null=False),
        _str("address", null=False),
        _int("network_id", null=False),
        _str("instance_uuid", 36, null=False),
        _str("uuid", 36, null=False),
        _str("tag"),
        *_audit(),
        sa.ForeignKeyConstraint(["instance_uuid"], ["instances.uuid"]),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"]),
        sa.PrimaryKeyConstraint("id"),
        _unique_live("address",
                     name="uniq_virtual_interfaces0address0deleted"),
        _unique_live("instance_uuid", "network_id",
                     name="uniq_vifs0instance0network0deleted"),
        sa.UniqueConstraint("uuid"),
    )  # fmt: skip


def _create_fixed_ips() -> None:
    op.create_table(
        "fixed_ips",
        _int("id", null=False),
        _str("address", 39, null=False),
        _int("network_id", null=False),
        _int("virtual_interface_id"),
        _str("instance_uuid", 36),
        _bool("allocated"),
        _bool("leased"),
        _bool("reserved"),
        _str("host"),
        *_audit(),
        sa.ForeignKeyConstraint(["instance_uuid"], ["instances.uuid"]),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"]),
        sa.ForeignKeyConstraint(["virtual_interface_id"],
                                ["virtual_interfaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        _unique_live("address", name="uniq_fixed_ips0address0deleted"),
        _unique_live("virtual_interface_id",
                     name="uniq_fixed_ips0vif0deleted"),
    )  # fmt: skip
    op.create_index("fixed_ips_deleted_allocated_updated_at_idx",
                    "fixed_ips", ["deleted", "allocated", "updated_at"])
    op.create_index("fixed_ips_instance_uuid_idx", "fixed_ips",
                    ["instance_uuid"])
    op.create_index("fixed_ips_lru_idx", "fixed_ips",
                    ["network_id", "updated_at", "id"],
                    **_free_rows(never_used=False))
    op.create_index("fixed_ips_never_used_idx", "fixed_ips",
                    ["network_id", "id"], **_free_rows(never_used=True))


def _create_floating_ips() -> None:
    op.create_table(
        "floating_ips",
        _int("id", null=False),
        _str("address", 39, null=False),
        _int("fixed_ip_id"),
        _str("project_id"),
        _str("host"),
        _bool("auto_assigned"),
        _str("pool", null=False),
        _str("interface"),
        *_audit(),
        sa.ForeignKeyConstraint(["fixed_ip_id"], ["fixed_ips.id"]),
        sa.PrimaryKeyConstraint("id"),
        _unique_live("address", name="uniq_floating_ips0address0deleted"),
        _unique_live("fixed_ip_id",
                     name="uniq_floating_ips0fixed_ip_id0deleted"),
    )  # fmt: skip
    op.create_index(
        "floating_ips_pool_deleted_fixed_ip_id_project_id_idx",
        "floating_ips",
        ["pool", "deleted", "fixed_ip_id", "project_id"],
    )


def upgrade() -> None:
    _create_bookkeeping()
    _create_instances()
    _create_networks()
    _create_security_groups()
    _create_vifs()
    _create_fixed_ips()
    _create_floating_ips()


def downgrade() -> None:
    # Dropping a table drops its indexes too (SQLite and PostgreSQL).
    for table in reversed(TABLES):
        op.drop_table(table)
