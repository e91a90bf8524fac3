"""service/daemon.py: generations drive reconciles; readiness recorded."""

from __future__ import annotations

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.model import Network
from flatnet.service import daemon
from tests.fakes_dnsmasq import new_db, new_instance, new_network


class Recorder:
    component = "dhcp"

    def __init__(self) -> None:
        self.synced: list[tuple[int, int]] = []
        self.dirty: set[int] = set()
        self.fail = False
        self.live = True

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        return None

    def sync_network(self, network: Network) -> bool:
        if self.fail:
            raise exception.DnsmasqError(bridge=network.bridge, reason="x")
        self.synced.append((network.id, network.generation))
        return self.live

    def poll(self) -> set[int]:
        dirty, self.dirty = self.dirty, set()
        return dirty


def _rig(tmp_path):
    db = new_db(tmp_path)
    network = new_network(db)
    rec = Recorder()
    loop = daemon.Daemon(db, "nethost", [rec])
    return db, network, rec, loop


def test_changes_are_batched_and_readiness_recorded(tmp_path):
    db, network, rec, loop = _rig(tmp_path)
    loop.run_once()
    for n in range(5):
        new_instance(db, network, f"vm{n}", f"fa:16:3e:00:00:0{n}")
    generation = db_api.network_generations(db)[network.id]
    assert loop.run_once() == 1  # five allocations, one reconcile
    assert rec.synced[-1] == (network.id, generation)
    assert db_api.host_state_get(db, "nethost", network.id, "dhcp") == (
        generation
    )
    assert loop.run_once() == 0  # nothing changed


def test_dirty_network_is_resynced_without_generation_change(tmp_path):
    _, network, rec, loop = _rig(tmp_path)
    loop.run_once()
    rec.dirty = {network.id}
    assert loop.run_once() == 1


def test_failure_backs_off_and_is_not_recorded(tmp_path):
    db, network, rec, loop = _rig(tmp_path)
    now = [0.0]
    loop.clock = lambda: now[0]
    rec.fail = True
    loop.run_once()
    assert db_api.host_state_get(db, "nethost", network.id, "dhcp") == 0
    assert loop.run_once() == 0  # backing off
    now[0] += 1.0
    rec.fail = False
    assert loop.run_once() == 1
    assert db_api.host_state_get(db, "nethost", network.id, "dhcp") > 0


def test_not_live_is_not_recorded(tmp_path):
    db, network, rec, loop = _rig(tmp_path)
    rec.live = False
    loop.run_once()
    assert db_api.host_state_get(db, "nethost", network.id, "dhcp") == 0
