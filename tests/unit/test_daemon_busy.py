"""While lease events flow, flatnet-network polls again after
``busy_interval`` instead of ``sync_interval`` (in a DHCP storm the
events then reach the database one poll behind the journals); an idle
host keeps polling every ``sync_interval``."""

from __future__ import annotations

import threading

from flatnet.db import api as db_api
from flatnet.plan import dnsmasq as plan
from flatnet.service import daemon
from tests.unit.test_service_daemon import Recorder
from tests.unit.test_service_dhcp import Rig, tmp_open  # noqa: F401


class BusyFor(Recorder):
    """Reports ``busy`` for its first ``polls`` polls."""

    def __init__(self, db, polls: int) -> None:
        super().__init__(db)
        self.left = polls

    def poll(self) -> daemon.Polled:
        polled = super().poll()
        busy, self.left = self.left > 0, self.left - 1
        return daemon.Polled(polled.generations, polled.dirty, busy=busy)


class Pauses(threading.Event):
    """The loop's wake event: records each pause, stops after ``n``."""

    def __init__(self, stop: threading.Event, n: int) -> None:
        super().__init__()
        self.stop, self.n = stop, n
        self.pauses: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout)
        if len(self.pauses) >= self.n:
            self.stop.set()
        return False


def test_the_loop_polls_sooner_while_polls_are_busy(tmp_open) -> None:  # noqa: F811
    rig = Rig(tmp_open)
    timing = daemon.DaemonTiming(sync_interval=2.0, busy_interval=0.01)
    loop = daemon.Daemon(rig.db, "nethost", [BusyFor(rig.db, 3)], timing)
    stop = threading.Event()
    pauses = Pauses(stop, 5)
    loop.run(stop, pauses)
    assert pauses.pauses == [0.01, 0.01, 0.01, 2.0, 2.0]


def test_dhcp_poll_is_busy_only_when_a_journal_had_events(tmp_open) -> None:  # noqa: F811
    rig = Rig(tmp_open, dhcp_lease_hook="lua")
    mac = rig.add(1)
    rig.sync()
    assert not rig.rec.poll().busy  # nothing journalled
    entry = db_api.host_entries(rig.db, rig.network.id)[0]
    events = plan.dnsmasq_paths(rig.np, "br100").events
    with open(events, "a") as handle:
        handle.write(f"\nadd {mac} {entry.address}\n")
    assert rig.rec.poll().busy
    assert db_api.leases(rig.db, rig.network.id)  # ingested by that poll
    assert not rig.rec.poll().busy  # consumed: idle again
