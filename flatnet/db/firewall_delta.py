"""The compute firewall's input for one host, read incrementally.

A :class:`HostFirewallReader` keeps the last state it read and, when
the ``firewall`` generation moved, reads only what the change log
(table ``firewall_changes``, written by :func:`flatnet.db.secgroups.bump`
in the transaction of each change) names above the generation it holds:
the changed instances' NIC rows and groups if they are (still) on the
host, their addresses in the groups the host needs (any host), and the
groups again when a group's rules changed or the set of groups used
changed. Deletions and moves away are log rows too (the instance no
longer reads as live on the host, so it leaves the state).

A full read (:func:`flatnet.db.firewall_state.read_host_firewall`'s
queries, plus the member addresses by instance) is made on the first
call, after :meth:`HostFirewallReader.reset` (the reconciler calls it
when an apply failed), every ``full_every`` seconds (so a missed log
row or any drift heals), and when the log names more instances than a
full read costs. A process killed at any point starts with no state:
its first read is full.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

import netaddr
from sqlalchemy import Connection, select

from flatnet.db import firewall_state as fs
from flatnet.db import rows
from flatnet.db.engine import Database
from flatnet.db.secgroups import CHANGES, FIREWALL_COUNTER, LOG_FLOOR
from flatnet.plan import firewall_model as fw

Addresses = frozenset[netaddr.IPAddress]
#: a delta naming more instances than this (and than a quarter of the
#: host) is read as a full read
FULL_AT = 256


@dataclasses.dataclass(slots=True)
class _Cache:
    """What the last read found, in the shape the delta updates."""

    generation: int
    instances: dict[str, fw.FilteredInstance]  # uuid -> instance
    groups: tuple[fw.SecurityGroup, ...]
    used: frozenset[int]
    #: group id -> member uuid -> its allocated addresses (any host)
    members_by: dict[int, dict[str, Addresses]]
    members: dict[int, Addresses]
    state: fw.HostFirewall


def _by_member(found: Iterable[Any]) -> dict[int, dict[str, Addresses]]:
    """group id -> uuid -> addresses, from :func:`_member_rows`."""
    out: dict[int, dict[str, set[netaddr.IPAddress]]] = {}
    for gid, uuid, address in found:
        out.setdefault(gid, {}).setdefault(uuid, set()).add(
            fw.ip_address(address)
        )
    return {
        gid: {u: frozenset(a) for u, a in per.items()}
        for gid, per in out.items()
    }


def _union(per: dict[str, Addresses]) -> Addresses:
    return frozenset().union(*per.values())


def _read_instances(
    conn: Connection, host: str, uuids: Iterable[str] | None
) -> dict[str, fw.FilteredInstance]:
    """uuid -> instance, for the live instances on ``host`` (of
    ``uuids`` when given), built as firewall_state builds them."""
    nics = fs.nics_of(fs.nic_rows(conn, host, uuids))
    groups_of = fs.memberships(conn, (u for u, _ in nics.values()))
    return {
        uuid: fs.filtered_instance(inst_id, uuid, vifs, tuple(groups_of[uuid]))
        for inst_id, (uuid, vifs) in nics.items()
    }


def _state(cache: _Cache) -> fw.HostFirewall:
    return fw.HostFirewall(
        instances=tuple(sorted(cache.instances.values(), key=_inst_id)),
        groups=cache.groups,
        members={
            g.id: cache.members[g.id]
            for g in cache.groups
            if g.id in cache.members
        },
    )


def _inst_id(instance: fw.FilteredInstance) -> int:
    return instance.id


def _used(instances: Iterable[fw.FilteredInstance]) -> frozenset[int]:
    return frozenset(g for i in instances for g in i.security_groups)


def full_read(conn: Connection, host: str) -> _Cache:
    """The whole host, in the cache's shape (one transaction)."""
    generation = rows.counter(conn, FIREWALL_COUNTER)
    instances = _read_instances(conn, host, None)
    used = _used(instances.values())
    groups = tuple(fs.groups_closure(conn, set(used)))
    members_by = _by_member(fs.member_rows(conn, (g.id for g in groups), None))
    cache = _Cache(
        generation=generation,
        instances=instances,
        groups=groups,
        used=used,
        members_by=members_by,
        members={gid: _union(per) for gid, per in members_by.items()},
        state=fw.HostFirewall(instances=(), groups=(), members={}),
    )
    cache.state = _state(cache)
    return cache


def _changes(conn: Connection, since: int) -> tuple[set[str], set[int]]:
    """(instance uuids, group ids) the log names above ``since``."""
    uuids: set[str] = set()
    groups: set[int] = set()
    for uuid, gid in conn.execute(
        select(CHANGES.c.instance_uuid, CHANGES.c.group_id).where(
            CHANGES.c.generation > since
        )
    ):
        if uuid is not None:
            uuids.add(uuid)
        if gid is not None:
            groups.add(gid)
    return uuids, groups


def _drop_changed(cache: _Cache, kept: set[int], uuids: set[str]) -> set[int]:
    """Remove the changed instances from the kept groups' members;
    the groups they were in."""
    touched: set[int] = set()
    for gid in kept:
        per = cache.members_by.get(gid)
        if per is None:
            continue
        for uuid in uuids:
            if per.pop(uuid, None) is not None:
                touched.add(gid)
    return touched


def _merge_members(
    conn: Connection, cache: _Cache, uuids: set[str], old_needed: set[int]
) -> None:
    """Re-read the changed instances' addresses in the needed groups,
    and the whole membership of a group newly needed."""
    needed = {g.id for g in cache.groups}
    for gid in set(cache.members_by) - needed:
        del cache.members_by[gid]
        cache.members.pop(gid, None)
    fresh = needed - old_needed
    for gid in fresh:
        cache.members_by.pop(gid, None)
    cache.members_by.update(_by_member(fs.member_rows(conn, fresh, None)))
    kept = needed - fresh
    touched = set(fresh)
    if uuids and kept:
        touched |= _drop_changed(cache, kept, uuids)
        for gid, got in _by_member(fs.member_rows(conn, kept, uuids)).items():
            cache.members_by.setdefault(gid, {}).update(got)
            touched.add(gid)
    for gid in touched:
        per = cache.members_by.get(gid)
        if per:
            cache.members[gid] = _union(per)
        else:
            cache.members.pop(gid, None)
            cache.members_by.pop(gid, None)


def delta_read(conn: Connection, host: str, cache: _Cache) -> _Cache:
    """``cache`` brought to the current generation from the change log
    (one transaction); ``cache`` is updated in place and returned."""
    generation = rows.counter(conn, FIREWALL_COUNTER)
    if generation == cache.generation:
        return cache
    uuids, groups = _changes(conn, cache.generation)
    if len(uuids) > max(FULL_AT, len(cache.instances) // 4):
        return full_read(conn, host)  # cheaper than many IN lists
    if rows.counter(conn, LOG_FLOOR) > cache.generation:
        return full_read(conn, host)  # rows we need were pruned
    if uuids:
        for uuid in uuids:
            cache.instances.pop(uuid, None)
        cache.instances.update(_read_instances(conn, host, uuids))
    used = _used(cache.instances.values()) if uuids else cache.used
    old_needed = {g.id for g in cache.groups}
    if groups or used != cache.used:
        cache.groups = tuple(fs.groups_closure(conn, set(used)))
        cache.used = used
    _merge_members(conn, cache, uuids, old_needed)
    cache.generation = generation
    cache.state = _state(cache)
    return cache


class HostFirewallReader:
    """``(generation, HostFirewall)`` of one host, read incrementally
    (the reconciler's ``reader``); see the module docstring."""

    def __init__(
        self,
        full_every: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.full_every = full_every
        self.clock = clock
        self.full_reads = 0
        self.delta_reads = 0
        self._cache: _Cache | None = None
        self._host: str | None = None
        self._next_full = 0.0

    def reset(self) -> None:
        """Forget the held state: the next read is a full read."""
        self._cache = None

    def __call__(self, db: Database, host: str) -> tuple[int, fw.HostFirewall]:
        now = self.clock()
        cache = self._cache
        if cache is None or host != self._host or now >= self._next_full:
            self._cache = None  # a failure below leaves no stale state
            with db.read() as conn:
                cache = full_read(conn, host)
            self._host, self._next_full = host, now + self.full_every
            self.full_reads += 1
        else:
            self._cache = None
            with db.read() as conn:
                fresh = delta_read(conn, host, cache)
            if fresh is cache:
                self.delta_reads += 1
            else:  # delta_read fell back to a full read
                self.full_reads += 1
            cache = fresh
        self._cache = cache
        return cache.generation, cache.state
