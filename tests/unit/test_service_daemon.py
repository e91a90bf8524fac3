"""service/daemon.py: keyed generations drive syncs; readiness and the
reason of a failure recorded; one reconciler's failure isolated."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.service import daemon
from tests.fakes_dnsmasq import new_db, new_instance, new_network


class Recorder:
    """A reconciler keyed by network, as the DHCP one is."""

    def __init__(self, db, component: str = "dhcp") -> None:
        self.db = db
        self.component = component
        self.synced: list[dict[str, int]] = []
        self.dirty: set[str] = set()
        self.fail: Exception | None = None
        self.poll_fail: Exception | None = None
        self.live = True

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        return None

    def poll(self) -> daemon.Polled:
        if self.poll_fail is not None:
            raise self.poll_fail
        dirty, self.dirty = self.dirty, set()
        wanted = db_api.network_generations(self.db)
        return daemon.Polled(
            {db_api.network_key(n): g for n, g in wanted.items()},
            frozenset(dirty),
        )

    def sync(self, keys: Mapping[str, int]) -> dict[str, daemon.Outcome]:
        if self.fail is not None:
            raise self.fail
        self.synced.append(dict(keys))
        return {k: daemon.Outcome(self.live) for k in keys}


def _rig(tmp_path, *components: str):
    db = new_db(tmp_path)
    network = new_network(db)
    recs = [Recorder(db, c) for c in components or ("dhcp",)]
    loop = daemon.Daemon(db, "nethost", recs)
    return db, network, recs[0], loop


def _state(db, network, component="dhcp"):
    return db_api.host_state(
        db, "nethost", component, db_api.network_key(network.id)
    )


def test_changes_are_batched_and_readiness_recorded(tmp_path):
    db, network, rec, loop = _rig(tmp_path)
    loop.run_once()
    for n in range(5):
        new_instance(db, network, f"vm{n}", f"fa:16:3e:00:00:0{n}")
    generation = db_api.network_generations(db)[network.id]
    key = db_api.network_key(network.id)
    assert loop.run_once() == 1  # five allocations, one sync
    assert rec.synced[-1] == {key: generation}
    assert _state(db, network).applied_generation == generation
    assert loop.run_once() == 0  # nothing changed


def test_dirty_key_is_resynced_without_generation_change(tmp_path):
    _, network, rec, loop = _rig(tmp_path)
    loop.run_once()
    rec.dirty = {db_api.network_key(network.id)}
    assert loop.run_once() == 1


def test_failure_backs_off_records_why_and_not_the_generation(tmp_path):
    db, network, rec, loop = _rig(tmp_path)
    now = [0.0]
    loop.clock = lambda: now[0]
    rec.fail = exception.HostNetworkError(
        "No space left on device: /np/nova-br100.conf"
    )
    loop.run_once()
    state = _state(db, network)
    assert state.applied_generation == 0
    assert state.last_error == "No space left on device: /np/nova-br100.conf"
    assert loop.run_once() == 0  # backing off
    now[0] += 1.0
    rec.fail = None
    assert loop.run_once() == 1
    state = _state(db, network)
    assert state.applied_generation > 0
    assert state.last_error is None


def test_not_live_is_not_recorded(tmp_path):
    db, network, rec, loop = _rig(tmp_path)
    rec.live = False
    loop.run_once()
    state = _state(db, network)
    assert state.applied_generation == 0
    assert state.last_error == "not live yet"


def test_a_failing_poll_does_not_stall_the_others(tmp_path, caplog):
    db, network, broken, loop = _rig(tmp_path, "dhcp", "rules")
    other = loop.reconcilers[1]
    broken.poll_fail = OSError(5, "Input/output error")
    caplog.set_level(logging.INFO, logger="flatnet.service.troubles")
    for _ in range(50):
        loop.run_once()
    assert _state(db, network, "rules").applied_generation > 0
    assert _state(db, network, "dhcp") is None
    assert len(other.synced) == 1
    failures = [r for r in caplog.records if "dhcp poll failed" in r.message]
    assert len(failures) == 1  # once, not every 0.1 s
    broken.poll_fail = None
    loop.run_once()
    assert _state(db, network, "dhcp").applied_generation > 0
    assert any("recovered after 50" in r.message for r in caplog.records)


def test_a_locked_database_on_record_is_retried(tmp_path):
    db, network, rec, loop = _rig(tmp_path)
    now = [0.0]
    loop.clock = lambda: now[0]
    real = db_api.host_state_record

    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")

    daemon.db_api.host_state_record = locked  # type: ignore[assignment]
    try:
        loop.run_once()
    finally:
        daemon.db_api.host_state_record = real  # type: ignore[assignment]
    assert _state(db, network) is None
    now[0] += 1.0
    assert loop.run_once() == 1
    assert _state(db, network).applied_generation > 0


def test_a_round_that_synced_freezes_the_heap_and_unfreezes_later(
    tmp_path, monkeypatch
):
    calls: list[str] = []
    monkeypatch.setattr(daemon.gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(
        daemon.gc, "unfreeze", lambda: calls.append("unfreeze")
    )
    _db, _network, _rec, loop = _rig(tmp_path)
    now = [100.0]
    loop.clock = lambda: now[0]
    rounds = iter([True, True, True])

    class Stop:
        """Stops run() after three rounds (no waiting)."""

        def is_set(self) -> bool:
            return next(rounds, False) is False

        def wait(self, _timeout: float) -> None:
            now[0] += 1.0

    loop.run(Stop())  # type: ignore[arg-type]
    # the first round synced (freeze, after giving back nothing); the
    # others synced nothing: no freeze
    assert calls == ["unfreeze", "freeze"]
