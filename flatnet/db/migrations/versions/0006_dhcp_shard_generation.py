"""A generation per DHCP shard: what each shard serves changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 19:30:00

``dhcp_shards.generation`` is bumped in the transaction of every write
that changes what the shard serves (a host allocated to it, deallocated,
disassociated, given a shard); the network host re-reads only the shards
whose generation differs from the one it applied (issue 12). Existing
rows start at 0: a daemon's first read after start is a full read.

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


def downgrade() -> None:
    with op.batch_alter_table("dhcp_shards") as batch:
        batch.drop_column("generation")
