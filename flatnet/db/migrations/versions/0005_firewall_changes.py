"""The firewall change log: what each ``firewall`` generation changed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 17:00:00

One row per changed instance (``instance_uuid``) or group whose rules
changed (``group_id``), stamped with the ``firewall`` generation of the
transaction that made the change; compute hosts read the rows above the
generation they applied (issue 9). Existing databases start with an
empty log: every host's first read after start is a full read.

Frozen snapshot: no import of flatnet.db.models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firewall_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("instance_uuid", sa.String(36), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "firewall_changes_generation_idx", "firewall_changes", ["generation"]
    )


def downgrade() -> None:
    op.drop_index("firewall_changes_generation_idx", "firewall_changes")
    op.drop_table("firewall_changes")
