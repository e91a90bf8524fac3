"""Keyed readiness (host_state), generations and per-host journals."""

from __future__ import annotations

import netaddr

from flatnet.db import api
from flatnet.model import LeaseEvent
from tests.db.conftest import make_instance, make_network


def test_keys_record_generations_and_errors(db) -> None:
    api.host_state_record(
        db, "h1", "dhcp", errors={"network:1": "no space left on device"}
    )
    state = api.host_state(db, "h1", "dhcp", "network:1")
    assert state is not None
    assert (state.applied_generation, state.last_error) == (
        0,
        "no space left on device",
    )
    api.host_state_record(db, "h1", "dhcp", applied={"network:1": 5})
    state = api.host_state(db, "h1", "dhcp", "network:1")
    assert state is not None
    assert (state.applied_generation, state.last_error) == (5, None)
    api.host_state_record(db, "h1", "dhcp", errors={"network:1": "locked"})
    state = api.host_state(db, "h1", "dhcp", "network:1")
    assert state is not None
    assert (state.applied_generation, state.last_error) == (5, "locked")
    assert api.host_state(db, "h1", "rules", "network:1") is None
    api.host_state_record(db, "h1", "compute", applied={"instance:u1": 2})
    assert api.host_state_get(db, "h1", 1, "dhcp") == 5


def test_generations_are_keyed_scopes(db) -> None:
    net = make_network(db)
    make_instance(db, "vm1", net, 1)
    api.floating_create(
        db, [netaddr.IPAddress("172.24.4.3")], pool="p", interface="eth1"
    )
    api.floating_associate(db, netaddr.IPAddress("172.24.4.3"), "vm1", "h1")
    assert api.generations(db) == {
        "rules": api.rules_generation(db),
        "firewall": api.firewall_generation(db),
    }
    assert api.generations(db, "instance:") == {}


def test_two_hosts_journals_on_one_database(db) -> None:
    net = make_network(db)
    make_instance(db, "vm1", net, 1)
    make_instance(db, "vm2", net, 2)
    path = "/var/lib/flatnet/networks/nova-br100.events"  # same on both
    [one, two] = api.host_entries(db, net.id)
    api.apply_lease_events(
        db, path, 11, 40, [LeaseEvent("add", one.mac, one.address)], host="a"
    )
    api.apply_lease_events(
        db,
        path,
        22,
        90,
        [LeaseEvent("add", two.mac, two.address)],
        host="b",
        invalid=1,
    )
    api.apply_lease_events(db, path, 11, 55, [], host="a", invalid=2)
    assert api.journal_offset(db, path, host="a") == (11, 55)
    assert api.journal_offset(db, path, host="b") == (22, 90)
    assert api.journal_invalid_lines(db, "a") == {path: 2}
    assert api.journal_invalid_lines(db, "b") == {path: 1}
    assert len(api.leases(db, net.id)) == 2
