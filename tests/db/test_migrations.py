"""Migrations from empty produce exactly the tables of models.py."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from flatnet.db import api, migration, models

#: the newest revision (the DHCP shard generation, issue 12)
HEAD = "0006"


@pytest.fixture
def empty(db_url):
    database = api.Database(db_url)
    yield database
    database.dispose()


def test_upgrade_head_on_empty_db_matches_models(empty) -> None:
    assert migration.current(empty) is None
    api.sync(empty)
    assert migration.current(empty) == HEAD
    with empty.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}),
            models.schema(),
        )
    assert tables == set(models.schema().tables)
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
    assert migration.current(empty) == HEAD


def test_downgrade_removes_everything_and_upgrade_again(empty) -> None:
    db = empty
    api.sync(db)
    cfg = migration.alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    api.sync(db)
    assert migration.current(db) == HEAD
    assert {"fixed_ips", "floating_ips", "networks"} <= set(
        inspect(db.engine).get_table_names()
    )


def test_0002_keeps_readiness_counters_and_journal_offsets(empty) -> None:
    db = empty
    migration.upgrade(db, "0001")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO host_state (host, network_id, component, "
            "applied_generation) VALUES ('h1', 7, 'dhcp', 41)"
        )
        conn.exec_driver_sql(
            "INSERT INTO counters (name, value) VALUES ('rules', 9)"
        )
        conn.exec_driver_sql(
            'INSERT INTO lease_journal_offsets (path, inode, "offset") '
            "VALUES ('/j', 5, 120)"
        )
    api.sync(db)
    assert migration.current(db) == HEAD
    assert api.host_state_get(db, "h1", 7, "dhcp") == 41
    state = api.host_state(db, "h1", "dhcp", "network:7")
    assert state is not None
    assert state.last_error is None
    assert api.rules_generation(db) == 9
    assert api.journal_offset(db, "/j") == (5, 120)
    cfg = migration.alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with db.engine.connect() as conn:
        back = conn.exec_driver_sql(
            "SELECT network_id, applied_generation FROM host_state"
        ).all()
    assert [tuple(r) for r in back] == [(7, 41)]


def test_firewall_change_log_table_upgrades_and_downgrades(empty) -> None:
    db = empty
    migration.upgrade(db, "0002")
    assert "firewall_changes" not in inspect(db.engine).get_table_names()
    api.sync(db)
    assert migration.current(db) == HEAD
    assert "firewall_changes" in inspect(db.engine).get_table_names()
    cfg = migration.alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert "firewall_changes" not in inspect(db.engine).get_table_names()
