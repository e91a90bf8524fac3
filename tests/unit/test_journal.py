"""linux/journal.py (torn records, reserve, loss counters) and
service/lease_guard.py (replay after a loss) on real files."""

from __future__ import annotations

import logging
import os

import pytest

from flatnet import exception
from flatnet.linux import journal
from flatnet.service import lease_events, lease_guard

MAC = "fa:16:3e:00:00:01"


def _lines(path) -> tuple[str, ...]:
    chunk = journal.read_chunk(str(path), 0)
    assert chunk is not None
    return chunk.lines


def test_a_torn_record_costs_only_itself(tmp_path):
    path = tmp_path / "nova-br100.events"
    journal.append_line(str(path), f"add {MAC} 10.0.0.2")
    with open(path, "a") as handle:  # a full disk cut this record
        handle.write("\nadd fa:16:3e:08:9e:2f 10")
    assert _lines(path) == (f"add {MAC} 10.0.0.2",)  # tail not read yet
    journal.append_line(str(path), f"add {MAC} 10.0.0.3")
    lines = _lines(path)
    assert lines == (
        f"add {MAC} 10.0.0.2",
        journal.TORN + "add fa:16:3e:08:9e:2f 10",
        f"add {MAC} 10.0.0.3",
    )
    events = [lease_events.parse_line(x) for x in lines]
    assert [e is None for e in events] == [False, True, False]


def test_a_torn_record_that_looks_valid_is_still_rejected(tmp_path):
    path = tmp_path / "nova-br100.events"
    journal.append_line(str(path), f"add {MAC} 10.0.0.2")
    with open(path, "a") as handle:
        handle.write(f"\nadd {MAC} 10.0.0.1")  # cut from 10.0.0.12
    journal.append_line(str(path), f"old {MAC} 10.0.0.2")
    assert lease_events.parse_line(_lines(path)[1]) is None


def test_lines_of_older_writers_are_read_as_they_are(tmp_path):
    path = tmp_path / "nova-br100.events"
    path.write_text(f"add {MAC} 10.0.0.2\ndel {MAC} 10.0.0.2\n")
    journal.append_line(str(path), f"add {MAC} 10.0.0.3")
    assert _lines(path) == (
        f"add {MAC} 10.0.0.2",
        f"del {MAC} 10.0.0.2",
        f"add {MAC} 10.0.0.3",
    )


def test_reserve_keeps_size_and_allocates_past_the_end(tmp_path):
    path = tmp_path / "nova-br100.events"
    path.write_text("x\n")
    path.chmod(0o644)
    try:
        spare = journal.reserve(str(path), 65536)
    except OSError as exc:  # a filesystem without fallocate
        pytest.skip(f"fallocate: {exc}")
    assert spare >= 65536 - 4096
    info = path.stat()
    assert info.st_size == 2
    assert info.st_mode & 0o777 == 0o600
    assert journal.reserve(str(path), 65536) == spare  # no new call


def test_loss_counters_are_rewritten_in_place(tmp_path):
    lost = str(tmp_path / "nova-br100.lost")
    assert journal.read_losses(lost) == journal.Losses(0, 0)
    journal.ensure_loss_file(lost)
    size = os.path.getsize(lost)
    journal.count_lost(lost)
    journal.count_lost(lost)
    journal.mark_recovered(lost, 1)
    journal.ensure_loss_file(lost)  # keeps what is there
    assert journal.read_losses(lost) == journal.Losses(2, 1)
    assert journal.read_losses(lost).pending == 1
    assert os.path.getsize(lost) == size


class Dnsmasq:
    def __init__(self, pid: int | None = 42, fail: bool = False) -> None:
        self.running = pid
        self.fail = fail
        self.hups: list[int] = []

    def pid(self) -> int | None:
        return self.running

    def reload(self, pid: int) -> None:
        if self.fail:
            raise exception.DnsmasqError(bridge="br100", reason="gone")
        self.hups.append(pid)


@pytest.fixture
def guard(tmp_path):
    now = [100.0]
    made = lease_guard.JournalGuard(
        str(tmp_path / "nova-br100.events"),
        "br100",
        reserve_bytes=65536,
        clock=lambda: now[0],
    )
    return made, now


def test_guard_replays_leases_once_per_loss(guard, caplog):
    guard, _ = guard
    dnsmasq = Dnsmasq()
    lost = journal.loss_path(guard.events)
    assert guard.poll(dnsmasq) == journal.Losses(0, 0)
    assert os.path.exists(guard.events)
    assert os.path.exists(lost)
    for _ in range(3):
        journal.count_lost(lost)
    with caplog.at_level(logging.WARNING):
        assert guard.poll(dnsmasq) == journal.Losses(3, 0)
    assert dnsmasq.hups == [42]
    assert journal.read_losses(lost) == journal.Losses(3, 3)
    assert "3 lease events could not be written" in caplog.text
    guard.poll(dnsmasq)
    assert dnsmasq.hups == [42]  # nothing new: no HUP


def test_guard_retries_a_failed_replay_later(guard):
    guard, now = guard
    lost = journal.loss_path(guard.events)
    guard.poll(Dnsmasq())
    journal.count_lost(lost)
    guard.poll(Dnsmasq(fail=True))
    assert journal.read_losses(lost).pending == 1
    dnsmasq = Dnsmasq()
    guard.poll(dnsmasq)
    assert dnsmasq.hups == []  # replay_interval not over yet
    now[0] += guard.replay_interval
    guard.poll(dnsmasq)
    assert dnsmasq.hups == [42]
    assert journal.read_losses(lost).pending == 0


def test_guard_without_dnsmasq_marks_losses_recovered(guard, caplog):
    guard, _ = guard
    lost = journal.loss_path(guard.events)
    guard.poll(Dnsmasq())
    journal.count_lost(lost)
    with caplog.at_level(logging.WARNING):
        guard.poll(Dnsmasq(pid=None))
    assert "come back as 'add' when the clients renew" in caplog.text
    assert journal.read_losses(lost).pending == 0
