"""Alembic environment for flatnet.

flatnet.db.migration passes an open Connection in
``config.attributes["connection"]``; the plain ``alembic`` command passes
``-x url=...`` instead. Batch mode is on so that SQLite can ALTER.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from flatnet.db import models

config = context.config
target_metadata = models.schema()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass -x url=<SQLAlchemy URL>")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) mode is not supported")
run_migrations_online()
