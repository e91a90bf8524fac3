"""The rules reconciler: one whole-host sync per change, periodic
re-verification, only this host's floating IPs."""

from __future__ import annotations

import netaddr
import pytest

from flatnet.db import api
from flatnet.service.daemon import Daemon, DaemonTiming
from flatnet.service.rules_reconciler import RulesReconciler
from tests.db.conftest import make_instance, make_network


class RecordingRules:
    """Stands in for HostRules: records what each sync was asked for."""

    def __init__(self) -> None:
        self.syncs: list[tuple[list[str], list[tuple[str, str | None]]]] = []
        self.verified: list[bool] = []

    def sync(self, networks, floating, verify=False) -> None:
        self.verified.append(verify)
        self.syncs.append((
            [n.label for n in networks],
            [(str(f.address), f.host) for f in floating
             if f.fixed_address is not None],
        ))  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path):
    database = api.Database(f"sqlite:///{tmp_path}/f.sqlite")
    api.sync(database)
    yield database
    database.dispose()


def _daemon(db, rules: RecordingRules, clock: Clock, forwards: list[int]):
    rec = RulesReconciler(
        db,
        "h1",
        rules,
        verify_interval=60.0,
        ip_forward=lambda: forwards.append(1) or True,
    )
    rec.clock = clock
    daemon = Daemon(db, "h1", [rec], DaemonTiming(periodic_interval=1e9))
    daemon.clock = clock
    return rec, daemon


def test_one_sync_for_all_networks_then_nothing_until_a_change(db) -> None:
    make_network(db)
    net2 = make_network(db, "10.1.0.0/24", label="second", bridge="br101")
    rules, clock, forwards = RecordingRules(), Clock(), []
    rec, daemon = _daemon(db, rules, clock, forwards)
    rec.prepare()
    assert forwards == [1]  # nova's initialize_gateway_device
    daemon.run_once()
    assert rules.syncs == [(["private", "second"], [])]
    daemon.run_once()
    daemon.run_once()
    assert len(rules.syncs) == 1  # nothing changed: no work at all
    assert api.host_state_get(db, "h1", net2.id, "rules") == net2.generation


def test_floating_changes_and_periodic_verify_trigger_a_sync(db) -> None:
    net = make_network(db)
    make_instance(db, "vm1", net, 1)
    make_instance(db, "vm2", net, 2)
    api.floating_create(db, [netaddr.IPAddress("172.24.4.3"),
                             netaddr.IPAddress("172.24.4.4")],
                        pool="public", interface="eth1")  # fmt: skip
    rules, clock, forwards = RecordingRules(), Clock(), []
    _, daemon = _daemon(db, rules, clock, forwards)
    daemon.run_once()
    api.floating_associate(db, netaddr.IPAddress("172.24.4.3"), "vm1", "h1")
    api.floating_associate(db, netaddr.IPAddress("172.24.4.4"), "vm2", "h2")
    daemon.run_once()
    # only this host's association is NATed here
    assert rules.syncs[-1] == (["private"], [("172.24.4.3", "h1")])
    daemon.run_once()
    assert len(rules.syncs) == 2
    clock.now += 61  # the periodic full verification (drift repair)
    daemon.run_once()
    assert len(rules.syncs) == 3
    assert rules.verified == [True, False, True]
