"""Migrations from empty produce exactly the tables of models.py."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from flatnet.db import api, migration, models


@pytest.fixture
def empty(db_url):
    database = api.Database(db_url)
    yield database
    database.dispose()


def test_upgrade_head_on_empty_db_matches_models(empty) -> None:
    assert migration.current(empty) is None
    api.sync(empty)
    assert migration.current(empty) == "0001"
    with empty.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}),
            models.Base.metadata,
        )
    assert tables == set(models.Base.metadata.tables)
    assert diff == []


def test_indexes_and_unique_constraints_exist(empty) -> None:
    api.sync(empty)
    with empty.engine.connect() as conn:
        insp = inspect(conn)
        indexes = {i["name"] for i in insp.get_indexes("fixed_ips")}
        uniques = {u["name"] for u in insp.get_unique_constraints("networks")}
    assert {"fixed_ips_never_used_idx", "fixed_ips_lru_idx"} <= indexes
    assert {"uniq_networks0label", "uniq_networks0bridge0deleted"} <= uniques


def test_sync_twice_is_a_no_op(empty) -> None:
    api.sync(empty)
    api.sync(empty)
    assert migration.current(empty) == "0001"


def test_downgrade_removes_everything_and_upgrade_again(empty) -> None:
    db = empty
    api.sync(db)
    cfg = migration.alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    api.sync(db)
    assert migration.current(db) == "0001"
    assert {"fixed_ips", "floating_ips", "networks"} <= set(
        inspect(db.engine).get_table_names()
    )
