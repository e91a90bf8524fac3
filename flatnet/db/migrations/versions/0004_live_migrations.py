"""Live migrations in progress: filters on both hosts until the finish.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 16:20:00

``live_migrations`` holds one row per instance being live-migrated
(nova ``migrations`` of a live migration: ``source_compute``,
``dest_compute``). While it exists the instance is filtered on its
``instances.host`` (the source) and on ``dest_compute``; nova
``_post_live_migration`` unfilters the source only once the guest has
left it (issue 10).

Frozen snapshot: no import of flatnet.db.models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_migrations",
        sa.Column("instance_uuid", sa.String(36), nullable=False),
        sa.Column("source_compute", sa.String(255), nullable=True),
        sa.Column("dest_compute", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["instance_uuid"], ["instances.uuid"]),
        sa.PrimaryKeyConstraint("instance_uuid"),
    )
    op.create_index(
        "ix_live_migrations_dest_compute",
        "live_migrations",
        ["dest_compute"],
    )


def downgrade() -> None:
    op.drop_index("ix_live_migrations_dest_compute", "live_migrations")
    op.drop_table("live_migrations")
