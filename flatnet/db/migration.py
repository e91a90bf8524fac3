"""Schema migrations (alembic), driven from Python.

``flatnet-manage db sync`` calls :func:`upgrade`. The alembic environment
lives in ``flatnet/db/migrations``; the first revision creates every table
of :mod:`flatnet.db.models`.
"""

from __future__ import annotations

import logging
import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from flatnet.db.engine import Database

LOG = logging.getLogger(__name__)
_HERE = os.path.dirname(os.path.abspath(__file__))


def alembic_config() -> Config:
    """The alembic Config of flatnet's migrations (no database bound)."""
    cfg = Config(os.path.join(_HERE, "alembic.ini"))
    cfg.set_main_option("script_location", os.path.join(_HERE, "migrations"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade the schema of ``db`` to ``revision`` (idempotent)."""
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    LOG.info("database %r upgraded to %s", db, revision)


def current(db: Database) -> str | None:
    """The revision ``db`` is at, or None for an empty database."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
