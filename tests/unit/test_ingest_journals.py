"""Several journals (a sharded network's) ingested in ONE transaction
per poll: every line once, all or nothing, and an unreadable journal
does not hold back the others (real SQLite, real files)."""

from __future__ import annotations

import os

import pytest

from flatnet.db import api as db_api
from flatnet.db import lease_batch
from flatnet.service import leases
from tests.fakes_dnsmasq import new_db, new_instance, new_network

HOST = "nethost"


def _rig(tmp_path, count: int) -> tuple[db_api.Database, int, list[str]]:
    db = new_db(tmp_path)
    network = new_network(db)
    for n in range(count):
        new_instance(db, network, f"vm{n}", f"fa:16:3e:00:00:{n + 1:02x}")
    return db, network.id, [str(tmp_path / f"s{k}.events") for k in (0, 1)]


def _journal(db: db_api.Database, net_id: int, path: str, *hosts: int):
    entries = db_api.host_entries(db, net_id)
    with open(path, "a") as handle:
        for n in hosts:
            mac = f"fa:16:3e:00:00:{n + 1:02x}"
            address = next(
                e.address
                for e in entries
                if int(e.mac) == int(mac.replace(":", ""), 16)
            )
            handle.write(f"\nadd {mac} {address}\n")


def _leased(db: db_api.Database, net_id: int) -> int:
    return len(db_api.leases(db, net_id))


def _none(paths: list[str]) -> dict[str, int]:
    """Nothing consumed from any of ``paths``."""
    return dict.fromkeys(paths, 0)


def test_every_journal_once_in_one_transaction(tmp_path, monkeypatch) -> None:
    db, net_id, paths = _rig(tmp_path, 4)
    _journal(db, net_id, paths[0], 0, 1)
    _journal(db, net_id, paths[1], 2)
    writes = []
    real_write = db.write
    monkeypatch.setattr(db, "write", lambda: writes.append(1) or real_write())
    done, failed = leases.ingest_journals(db, paths, host=HOST)
    assert len(writes) == 1  # one commit for both journals
    assert failed == {}
    assert done == {p: os.path.getsize(p) for p in paths}
    assert _leased(db, net_id) == 3
    offsets = db_api.journal_offsets(db, HOST)
    for path in paths:
        assert offsets[path] == (os.stat(path).st_ino, os.path.getsize(path))
    assert leases.ingest_journals(db, paths, host=HOST) == (_none(paths), {})
    _journal(db, net_id, paths[1], 3)
    done, _ = leases.ingest_journals(db, paths, host=HOST)
    added = len("\nadd fa:16:3e:00:00:04 10.210.0.5\n")
    assert done == {paths[0]: 0, paths[1]: added}
    assert _leased(db, net_id) == 4


def test_a_failed_commit_records_nothing_then_all_once(
    tmp_path, monkeypatch
) -> None:
    db, net_id, paths = _rig(tmp_path, 2)
    _journal(db, net_id, paths[0], 0)
    _journal(db, net_id, paths[1], 1)
    real = lease_batch.apply

    def broken(conn, events):
        real(conn, events)
        raise RuntimeError("database went away mid-transaction")

    monkeypatch.setattr(lease_batch, "apply", broken)
    with pytest.raises(RuntimeError):
        leases.ingest_journals(db, paths, host=HOST)
    assert _leased(db, net_id) == 0
    assert db_api.journal_offsets(db, HOST) == {}
    monkeypatch.setattr(lease_batch, "apply", real)
    done, failed = leases.ingest_journals(db, paths, host=HOST)
    assert failed == {}
    assert all(done[p] > 0 for p in paths)
    assert _leased(db, net_id) == 2
    assert leases.ingest_journals(db, paths, host=HOST) == (_none(paths), {})


def test_an_unreadable_journal_does_not_hold_back_the_others(
    tmp_path,
) -> None:
    db, net_id, paths = _rig(tmp_path, 1)
    os.mkdir(paths[0])  # read(2) fails with EISDIR
    _journal(db, net_id, paths[1], 0)
    done, failed = leases.ingest_journals(db, paths, host=HOST)
    assert list(failed) == [paths[0]]
    assert paths[0] in str(failed[paths[0]])
    assert list(done) == [paths[1]]
    assert done[paths[1]] > 0
    assert _leased(db, net_id) == 1
    with pytest.raises(type(failed[paths[0]])):
        leases.ingest_journal(db, paths[0], host=HOST)
