"""import nova under faults: kill -9 in the middle of the write
transaction, and flatnet's database locked by another writer. Either
way nothing is half-imported, and running the import again completes
it (SQLite)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from flatnet import exception
from flatnet.db import api
from flatnet.migrate import nova_import
from tests.db.test_nova_import import ROWS, TABLES, dump, make_nova

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
#: imports, reports the first rows written, then waits to be killed
CHILD = """
import sys, time
from flatnet.db import api
from flatnet.migrate import nova_import

def progress(total):
    def step(n):
        print("written", n, flush=True)
        time.sleep(60)
    return step

db = api.Database(sys.argv[1])
nova_import.import_nova(db, sys.argv[2], progress=progress)
"""


def _counts(db: api.Database) -> dict[str, int]:
    return {t: len(rows) for t, rows in dump(db).items() if t in TABLES}


def test_kill_9_during_the_write_leaves_nothing(tmp_path):
    nova = f"sqlite:///{tmp_path}/nova.sqlite"
    make_nova(nova)
    url = f"sqlite:///{tmp_path}/flatnet.sqlite"
    db = api.Database(url)
    api.sync(db)
    before = dump(db)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, nova], cwd=ROOT,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("written ")
        os.kill(child.pid, signal.SIGKILL)  # rows written, not committed
    finally:
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert dump(db) == before
    summary = nova_import.import_nova(db, nova)
    assert sum(summary.imported.values()) == ROWS
    assert sum(_counts(db).values()) == ROWS
    db.dispose()


def test_locked_database_is_a_clear_error_and_writes_nothing(tmp_path):
    nova = f"sqlite:///{tmp_path}/nova.sqlite"
    make_nova(nova)
    path = tmp_path / "flatnet.sqlite"
    db = api.Database(f"sqlite:///{path}", busy_timeout=0.3)
    api.sync(db)
    before = dump(db)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another local writer holds it
    try:
        with pytest.raises(exception.DatabaseError) as err:
            nova_import.import_nova(db, nova)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "\n" not in str(err.value)
    assert "lock" in str(err.value).lower()
    assert dump(db) == before
    assert nova_import.import_nova(db, nova).changed
    db.dispose()
