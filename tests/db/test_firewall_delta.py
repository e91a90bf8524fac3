"""The incremental host firewall read (firewall change log) equals a
full read after any sequence of changes, and falls back to full reads
when it must (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import Callable

import netaddr
import pytest
from sqlalchemy import delete, select

from flatnet import exception
from flatnet.db import api, firewall_delta, models, secgroups
from flatnet.db.firewall_delta import HostFirewallReader
from tests.db.conftest import make_network

HOSTS = ("h1", "h1", "h2", None)
GROUPS = ("default", "web", "app", "db")


class World:
    """Random changes through the real API (each one transaction)."""

    def __init__(self, db: api.Database, seed: int) -> None:
        self.db = db
        self.rnd = random.Random(seed)
        self.net = make_network(db, cidr="10.0.0.0/22").id
        self.n = 0
        for name in GROUPS[1:]:
            api.secgroup_create(db, name)

    def names(self) -> list[str]:
        return [i.hostname for i in api.instance_list(self.db)]

    def create(self) -> None:
        self.n += 1
        groups = self.rnd.sample(GROUPS, self.rnd.randint(0, 2))
        spec = api.InstanceSpec(
            hostname=f"vm{self.n}", display_name=f"vm{self.n}",
            host=self.rnd.choice(HOSTS), security_groups=tuple(groups),
        )  # fmt: skip
        if self.rnd.random() < 0.2:
            api.instance_create(
                self.db, hostname=spec.hostname, display_name=spec.hostname,
                host=spec.host,
            )  # fmt: skip
            return
        mac = netaddr.EUI(0xFA163E000000 + self.n)
        api.instance_create_allocated(
            self.db, spec, [api.VifRequest(self.net, mac)]
        )

    def delete(self, name: str) -> None:
        uuid = api.instance_get(self.db, name).uuid
        api.deallocate_for_instance(self.db, uuid)

    def move(self, name: str) -> None:
        api.instance_set_host(self.db, name, self.rnd.choice(HOSTS))

    def join(self, name: str) -> None:
        api.instance_add_secgroup(self.db, name, self.rnd.choice(GROUPS))

    def leave(self, name: str) -> None:
        api.instance_remove_secgroup(self.db, name, self.rnd.choice(GROUPS))

    def rule(self) -> None:
        port = str(self.rnd.randint(1, 6))
        source = self.rnd.choice((None, *GROUPS))
        spec = api.RuleSpec("tcp", port, source_group=source)
        if source is None:
            spec = api.RuleSpec("tcp", port, cidr="10.9.0.0/16")
        group = self.rnd.choice(GROUPS)
        if self.rnd.random() < 0.4:
            api.secgroup_rule_delete(self.db, group, spec)
        else:
            api.secgroup_rule_add(self.db, group, spec)

    def regroup(self) -> None:
        name = self.rnd.choice(GROUPS[1:])
        try:
            api.secgroup_delete(self.db, name)
        except exception.FlatnetError:
            return
        api.secgroup_create(self.db, name)

    def step(self) -> None:
        names = self.names()
        on_one: list[Callable[[str], None]] = [
            self.delete, self.move, self.join, self.leave,
        ]  # fmt: skip
        choice = self.rnd.random()
        try:
            if choice < 0.35 or not names:
                self.create()
            elif choice < 0.55:
                self.rule()
            elif choice < 0.6:
                self.regroup()
            else:
                self.rnd.choice(on_one)(self.rnd.choice(names))
        except exception.FlatnetError:
            pass  # refused changes (not a member, rule exists) change nothing


@pytest.mark.parametrize("seed", range(6))
def test_incremental_read_equals_full_read(db, seed) -> None:
    world = World(db, seed)
    readers = {h: HostFirewallReader(full_every=1e9) for h in ("h1", "h2")}
    for step in range(60):
        for _ in range(world.rnd.randint(1, 3)):
            world.step()
        for host, reader in readers.items():
            got = reader(db, host)
            assert got == api.host_firewall(db, host), (seed, step, host)
    for reader in readers.values():
        assert reader.full_reads == 1  # every later read was a delta
        assert reader.delta_reads == 59


def test_unchanged_generation_reads_nothing_new(db) -> None:
    world = World(db, 1)
    for _ in range(5):
        world.create()
    reader = HostFirewallReader(full_every=1e9)
    first = reader(db, "h1")
    assert reader(db, "h1") is not first  # a new tuple...
    assert reader(db, "h1")[1] is first[1]  # ...of the very same state


def test_a_lost_log_row_heals_at_the_periodic_full_read(db) -> None:
    world = World(db, 2)
    now = [0.0]
    reader = HostFirewallReader(full_every=60.0, clock=lambda: now[0])
    reader(db, "h1")
    api.instance_create(db, hostname="lost", display_name="x", host="h1")
    with db.write() as conn:  # a writer that forgot to log its change
        conn.execute(delete(models.FIREWALL_CHANGES))
    assert reader(db, "h1") != api.host_firewall(db, "h1")
    world.create()
    now[0] = 61.0
    assert reader(db, "h1") == api.host_firewall(db, "h1")
    assert reader.full_reads == 2


def test_reset_and_a_new_reader_read_in_full(db) -> None:
    world = World(db, 3)
    reader = HostFirewallReader(full_every=1e9)
    reader(db, "h1")
    world.create()
    reader.reset()
    assert reader(db, "h1") == api.host_firewall(db, "h1")
    assert (reader.full_reads, reader.delta_reads) == (2, 0)
    # a restarted process has no state: its first read is full
    fresh = HostFirewallReader(full_every=1e9)
    assert fresh(db, "h1") == api.host_firewall(db, "h1")
    assert fresh.full_reads == 1


def test_many_changes_fall_back_to_a_full_read(db, monkeypatch) -> None:
    monkeypatch.setattr(firewall_delta, "FULL_AT", 2)
    world = World(db, 4)
    for _ in range(12):
        world.create()
    reader = HostFirewallReader(full_every=1e9)
    reader(db, "h1")
    for _ in range(6):
        world.create()
    assert reader(db, "h1") == api.host_firewall(db, "h1")
    assert (reader.full_reads, reader.delta_reads) == (2, 0)


def test_a_reader_behind_the_pruned_log_reads_in_full(db, monkeypatch) -> None:
    monkeypatch.setattr(secgroups, "LOG_KEEP", 3)
    monkeypatch.setattr(secgroups, "LOG_PRUNE_EVERY", 1)
    world = World(db, 5)
    behind = HostFirewallReader(full_every=1e9)
    keeping_up = HostFirewallReader(full_every=1e9)
    world.create()
    behind(db, "h1")
    keeping_up(db, "h1")
    for _ in range(8):
        world.create()
        assert keeping_up(db, "h1") == api.host_firewall(db, "h1")
    with db.read() as conn:
        kept = conn.execute(select(models.FIREWALL_CHANGES.c.generation))
        assert min(kept.scalars()) > api.firewall_generation(db) - 4
    assert behind(db, "h1") == api.host_firewall(db, "h1")
    assert (behind.full_reads, keeping_up.full_reads) == (2, 1)
