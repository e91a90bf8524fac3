"""A generation per DHCP shard: what each shard serves changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 19:30:00

``dhcp_shards.generation`` is bumped in the transaction of every write
that changes what the shard serves (a host allocated to it, deallocated,
disassociated, given a shard), and the changed ``fixed_ips`` rows are
stamped with it (``dhcp_gen``); the network host reads only the rows
stamped above the generation it applied of each shard (issue 12).
Existing rows start at 0 / NULL: a daemon's first read is a full read.

Frozen snapshot: no import of flatnet.db.models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "dhcp_shards",
        sa.Column(
            "generation", sa.BigInteger(), nullable=False, server_default="0"
        ),
    )
    op.add_column("fixed_ips", sa.Column("dhcp_gen", sa.BigInteger()))
    op.drop_index("fixed_ips_dhcp_shard_idx", table_name="fixed_ips")
    op.create_index(
        "fixed_ips_dhcp_idx",
        "fixed_ips",
        ["network_id", "dhcp_shard", "dhcp_gen"],
    )


def downgrade() -> None:
    op.drop_index("fixed_ips_dhcp_idx", table_name="fixed_ips")
    op.create_index(
        "fixed_ips_dhcp_shard_idx", "fixed_ips", ["network_id", "dhcp_shard"]
    )
    with op.batch_alter_table("fixed_ips") as batch:
        batch.drop_column("dhcp_gen")
    with op.batch_alter_table("dhcp_shards") as batch:
        batch.drop_column("generation")
