"""kill -9 of the daemon's ingest mid-batch loses nothing and applies
nothing twice (real SQLite file, real SIGKILL).

A journal of 20,000 records (every 97th line garbage, counted as
invalid) is ingested by a child process in small polls (2 KiB each,
one transaction with its offset) and killed at several moments; a last
child finishes. The rows must equal one clean ingest, the invalid-line
count must be exact (a replayed poll would count its garbage twice, a
lost one not at all) and the offset must be the journal's end.
"""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from flatnet.db import api as db_api
from flatnet.db.rows import FIXED
from flatnet.service import leases
from tests.fakes_dnsmasq import new_db, new_instance, new_network

pytestmark = [pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHILD = """
import sys
from flatnet.db import api as db_api
from flatnet.service import leases
db = db_api.Database(f"sqlite:///{sys.argv[1]}")
policy = leases.IngestPolicy(max_bytes=2048, rotate_bytes=1 << 40)
print("ready", flush=True)
while leases.ingest_journal(db, sys.argv[2], policy) > 0:
    pass
"""


def _world(tmp: pathlib.Path) -> list[tuple[str, str]]:
    db = new_db(tmp)
    network = new_network(db)
    for n in range(40):
        new_instance(db, network, f"vm{n}", f"fa:16:3e:00:0d:{n:02x}")
    hosts = [
        (str(e.mac).replace("-", ":").lower(), str(e.address))
        for e in db_api.host_entries(db, network.id)
    ]
    db.dispose()  # checkpointed: the file alone is the database
    return hosts


def _journal(hosts: list[tuple[str, str]], count: int) -> tuple[str, int]:
    rng = random.Random(12)
    lines, invalid = [], 0
    for n in range(count):
        if n % 97 == 96:
            lines.append("\ngarbage line\n")
            invalid += 1
            continue
        mac, ip = rng.choice(hosts)
        action = rng.choice(["add", "old", "del"])
        lines.append(f"\n{action} {mac} {ip}\n")
    return "".join(lines), invalid


def _rows(db: db_api.Database) -> list[tuple[object, ...]]:
    with db.read() as conn:
        found = conn.execute(
            select(
                FIXED.c.address, FIXED.c.instance_uuid, FIXED.c.leased
            ).order_by(FIXED.c.id)
        ).all()
    return [tuple(r) for r in found]


def _child(db_file: pathlib.Path, path: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_file), path],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    return proc


def test_kill_9_mid_ingest_loses_and_duplicates_nothing(tmp_path):
    hosts = _world(tmp_path)
    text, invalid = _journal(hosts, 20000)
    path = str(tmp_path / "nova-br100.events")
    pathlib.Path(path).write_text(text)
    reference = tmp_path / "ref"
    reference.mkdir()
    shutil.copy(tmp_path / "flatnet.sqlite", reference / "flatnet.sqlite")
    ref_db = db_api.Database(f"sqlite:///{reference}/flatnet.sqlite")
    leases.ingest_journal(ref_db, path)
    db_file = tmp_path / "flatnet.sqlite"
    db = db_api.Database(f"sqlite:///{db_file}")
    size = os.path.getsize(path)
    midway = 0
    for delay in (0.05, 0.13, 0.21, 0.08, 0.34, 0.02):
        proc = _child(db_file, path)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        stored = db_api.journal_offset(db, path)
        offset = 0 if stored is None else stored[1]
        midway += 0 < offset < size
    assert midway >= 2  # the kills did land mid-journal
    proc = _child(db_file, path)
    assert proc.wait(timeout=120) == 0
    proc.stdout.close()  # type: ignore[union-attr]
    assert db_api.journal_offset(db, path) == (os.stat(path).st_ino, size)
    assert db_api.journal_invalid_lines(db, "") == {path: invalid}
    assert _rows(db) == _rows(ref_db)
    print(
        f"\n{midway} of 6 kill -9 landed mid-journal; rows, offset and "
        f"{invalid} invalid lines exact"
    )
