"""Keyed readiness, generic generations, journals per host.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 13:25:00

* ``host_state`` is keyed by ``(host, component, key)`` (``key`` is a
  string such as ``network:3``; later ``instance:<uuid>``) and carries
  ``last_error``, why the host could not apply it (issue 7, 8). Old rows
  become ``network:<network_id>``.
* ``counters`` becomes ``generations(scope, generation)``: one keyed
  generation counter for every kind of change a host applies.
* ``lease_journal_offsets`` is keyed by ``(host, path)`` so several
  hosts can share one database, and counts invalid (torn) lines.
  Old rows get host ``''``.

Frozen snapshot: no import of flatnet.db.models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _host_state() -> None:
    op.create_table(
        "host_state_v2",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("component", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("applied_generation", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("host", "component", "key"),
    )
    op.execute(
        "INSERT INTO host_state_v2 (host, component, key, "
        "applied_generation, updated_at) SELECT host, component, "
        "'network:' || CAST(network_id AS VARCHAR(20)), "
        "applied_generation, updated_at FROM host_state"
    )
    op.drop_table("host_state")
    op.rename_table("host_state_v2", "host_state")


def _generations() -> None:
    op.create_table(
        "generations",
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.execute(
        "INSERT INTO generations (scope, generation) "
        "SELECT name, value FROM counters"
    )
    op.drop_table("counters")


def _journals() -> None:
    op.create_table(
        "lease_journals",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("invalid_lines", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("host", "path"),
    )
    op.execute(
        'INSERT INTO lease_journals (host, path, inode, "offset", '
        'invalid_lines) SELECT \'\', path, inode, "offset", 0 '
        "FROM lease_journal_offsets"
    )
    op.drop_table("lease_journal_offsets")


def upgrade() -> None:
    _host_state()
    _generations()
    _journals()


def downgrade() -> None:
    op.create_table(
        "lease_journal_offsets",
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("path"),
    )
    op.execute(
        'INSERT INTO lease_journal_offsets (path, inode, "offset") '
        "SELECT path, inode, \"offset\" FROM lease_journals WHERE host = ''"
    )
    op.drop_table("lease_journals")
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO counters (name, value) SELECT scope, generation "
        "FROM generations WHERE length(scope) <= 64"
    )
    op.drop_table("generations")
    op.create_table(
        "host_state_v1",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(32), nullable=False),
        sa.Column("applied_generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("host", "network_id", "component"),
    )
    op.execute(
        "INSERT INTO host_state_v1 (host, network_id, component, "
        "applied_generation, updated_at) SELECT host, "
        "CAST(substr(key, 9) AS INTEGER), component, applied_generation, "
        "updated_at FROM host_state WHERE key LIKE 'network:%'"
    )
    op.drop_table("host_state")
    op.rename_table("host_state_v1", "host_state")
