"""service/leases.py + linux/journal.py: journal parsing and
exactly-once ingest into a real SQLite database."""

from __future__ import annotations

import os

import netaddr
import pytest

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.linux import journal
from flatnet.model import LeaseEvent
from flatnet.service import leases
from tests.fakes_dnsmasq import new_db, new_instance, new_network

MAC = "fa:16:3e:00:00:01"


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (f"add {MAC} 10.0.0.3", True),
        (f"old {MAC.upper()} 10.0.0.3", True),
        (f"del {MAC} 10.0.0.3", True),
        (f"init {MAC} 10.0.0.3", False),
        (f"add {MAC} 10.0.0.3 extra", False),
        (f"add {MAC} 10.0.0.256", False),
        (f"add {MAC} ::1", False),
        ("add fa:16:3e:00:00 10.0.0.3", False),
        ("", False),
        ("add  10.0.0.3", False),
    ],
)
def test_parse_line(line, ok):
    event = leases.parse_line(line)
    assert (event is not None) == ok
    if event is not None:
        assert leases.event_line(event) == line.replace(MAC.upper(), MAC)


@pytest.fixture
def rig(tmp_path):
    db = new_db(tmp_path)
    network = new_network(db)
    new_instance(db, network, "vm1", MAC)
    return db, str(tmp_path / "nova-br100.events")


def _leased(db) -> bool:
    return bool(db_api.leases(db, 1))


def test_ingest_applies_each_line_exactly_once(rig):
    db, path = rig
    with open(path, "w") as handle:
        handle.write(f"add {MAC} 10.210.0.2\n")
    assert leases.ingest_journal(db, path) > 0
    assert _leased(db)
    assert leases.ingest_journal(db, path) == 0  # nothing new
    with open(path, "a") as handle:
        handle.write(f"del {MAC} 10.210.0.2\nadd {MAC} 10.2")  # torn tail
    leases.ingest_journal(db, path)
    assert not _leased(db)
    inode, offset = db_api.journal_offset(db, path)
    assert offset == os.path.getsize(path) - len(f"add {MAC} 10.2")
    with open(path, "a") as handle:
        handle.write("10.0.2\n")
    leases.ingest_journal(db, path)
    assert _leased(db)


def test_malformed_lines_are_skipped_not_fatal(rig):
    db, path = rig
    with open(path, "wb") as handle:
        handle.write(
            b"garbage\xff\xfe line\n\n" + f"old {MAC} 10.210.0.2\n".encode()
        )
    leases.ingest_journal(db, path)
    assert _leased(db)


def test_rotation_keeps_exactly_once(rig):
    db, path = rig
    policy = leases.IngestPolicy(rotate_bytes=10, old_grace=0.0)
    leases.record_event(
        path,
        LeaseEvent("add", netaddr.EUI(MAC), netaddr.IPAddress("10.210.0.2")),
    )
    leases.ingest_journal(db, path, policy)
    assert os.path.exists(path + ".old")
    # the next journal exists at once, root-only (the Lua hook would
    # create it with dnsmasq's umask 022)
    assert os.path.getsize(path) == 0
    assert os.stat(path).st_mode & 0o777 == 0o600
    # a late writer still appending into the rotated inode is drained
    with open(path + ".old", "a") as handle:
        handle.write(f"del {MAC} 10.210.0.2\n")
    leases.ingest_journal(db, path, policy)
    assert not _leased(db)
    leases.ingest_journal(db, path, policy)
    assert not os.path.exists(path + ".old")
    leases.record_event(
        path,
        LeaseEvent("add", netaddr.EUI(MAC), netaddr.IPAddress("10.210.0.2")),
    )
    leases.ingest_journal(db, path, policy)
    assert _leased(db)


def test_crash_between_rename_and_record_does_not_replay(rig):
    db, path = rig
    leases.record_event(
        path,
        LeaseEvent("add", netaddr.EUI(MAC), netaddr.IPAddress("10.210.0.2")),
    )
    leases.ingest_journal(db, path)
    journal.rotate(path)  # the "crash": offset still under the base key
    db_api.release_fixed_ip(db, netaddr.IPAddress("10.210.0.2"), None)
    leases.ingest_journal(db, path)
    assert not _leased(db)  # the old "add" was not applied again


def test_append_line_rejects_multi_line_input(tmp_path):
    with pytest.raises(ValueError, match="single"):
        journal.append_line(str(tmp_path / "j"), "a\nb")


def test_two_hosts_ingest_the_same_journal_path_independently(rig):
    db, path = rig
    leases.record_event(
        path,
        LeaseEvent("add", netaddr.EUI(MAC), netaddr.IPAddress("10.210.0.2")),
    )
    with open(path, "a") as handle:
        handle.write(f"\nadd {MAC} 10.2\n")  # an invalid record
    assert leases.ingest_journal(db, path, host="a") > 0
    db_api.release_fixed_ip(db, netaddr.IPAddress("10.210.0.2"), None)
    # host b (another machine, same networks_path) has its own offset
    assert leases.ingest_journal(db, path, host="b") > 0
    assert _leased(db)
    assert leases.ingest_journal(db, path, host="a") == 0
    assert db_api.journal_invalid_lines(db, "a") == {path: 1}
    assert db_api.journal_invalid_lines(db, "b") == {path: 1}


def test_an_unreadable_journal_is_one_clear_error(rig):
    db, path = rig
    os.mkdir(path)  # reading a directory: EISDIR
    with pytest.raises(exception.HostNetworkError, match="journal .*events"):
        leases.ingest_journal(db, path)
