"""The wake socket: a write on this host makes the local
flatnet-network poll at once instead of after ``sync_interval``; no
daemon, a stale socket or a stopped one cost nothing but the wake."""

from __future__ import annotations

import os
import stat
import threading
import time

from flatnet.service import daemon, wake
from tests.fakes_dnsmasq import new_db, new_instance, new_network
from tests.unit.test_service_daemon import Recorder


def _run(loop: daemon.Daemon, stop, wake_event) -> threading.Thread:
    thread = threading.Thread(target=loop.run, args=(stop, wake_event))
    thread.start()
    return thread


def test_a_wake_makes_the_loop_poll_at_once(tmp_path) -> None:
    db = new_db(tmp_path)
    network = new_network(db)
    rec = Recorder(db)
    timing = daemon.DaemonTiming(sync_interval=30.0)
    loop = daemon.Daemon(db, "nethost", [rec], timing)
    stop, event = threading.Event(), threading.Event()
    path = wake.path_in(str(tmp_path))
    waker = wake.Waker(path, event)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    thread = _run(loop, stop, event)
    try:
        deadline = time.monotonic() + 5
        while not rec.synced and time.monotonic() < deadline:
            time.sleep(0.01)
        before = len(rec.synced)
        new_instance(db, network, "vm1", "fa:16:3e:00:00:01")  # 30 s away
        start = time.monotonic()
        assert wake.notify(path)
        while len(rec.synced) == before and time.monotonic() - start < 5:
            time.sleep(0.005)
        took = time.monotonic() - start
        assert len(rec.synced) > before
        assert took < 5  # not the 30 s sync_interval
    finally:
        stop.set()
        event.set()
        thread.join(timeout=10)
        waker.close()
    assert not thread.is_alive()
    assert not os.path.exists(path)


def test_notify_without_a_daemon_is_harmless(tmp_path) -> None:
    path = wake.path_in(str(tmp_path))
    assert not wake.notify(path)  # nothing there
    event = threading.Event()
    waker = wake.Waker(path, event)
    waker.close()
    assert not wake.notify(path)  # closed
    # a killed daemon's stale socket is replaced by the next one
    stale = wake.Waker(path, event)
    stale._sock.close()  # noqa: SLF001 - as kill -9 leaves it
    fresh = wake.Waker(path, event)
    try:
        assert wake.notify(path)
        assert event.wait(2)
    finally:
        fresh.close()
        stale._closed.set()  # noqa: SLF001
