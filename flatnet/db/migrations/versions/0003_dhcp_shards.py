"""DHCP shards: a large network served by several dnsmasq.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 16:20:00

* ``dhcp_shards(network_id, shard, address, hosts)``: the shards of a network
  with more hosts than ``dhcp_shard_hosts``; each ``address`` is a
  reserved fixed IP of the network (never given to an instance).
* ``fixed_ips.dhcp_shard``: the shard that serves the address, stored
  when it is allocated (NULL on networks served by one dnsmasq).

Frozen snapshot: no import of flatnet.db.models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dhcp_shards",
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(39), nullable=False),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"]),
        sa.PrimaryKeyConstraint("network_id", "shard"),
    )
    # plain ADD COLUMN: a batch copy would lose the partial indexes
    op.add_column("fixed_ips", sa.Column("dhcp_shard", sa.Integer()))
    op.create_index(
        "fixed_ips_dhcp_shard_idx", "fixed_ips", ["network_id", "dhcp_shard"]
    )


def downgrade() -> None:
    op.drop_index("fixed_ips_dhcp_shard_idx", table_name="fixed_ips")
    op.drop_column("fixed_ips", "dhcp_shard")  # SQLite >= 3.35
    op.drop_table("dhcp_shards")
