"""The daemon's own lease timeout for Lua-hooked dnsmasqs (part of
component ``dhcp``).

A Lua script gets no ``init`` call (dnsmasq(8) ``--dhcp-luascript``), so
a restarted dnsmasq knows no lease; with ``--dhcp-authoritative`` it
ACKs each renewal and recreates the lease (``add`` journaled), but a
lease that nobody renews is unknown to it and never gets a ``del``.
With ``--script-on-renewal`` every renewal journals ``old``, so a
leased address not confirmed for the lease time plus a grace is gone:
:class:`LeaseExpiry` releases it in the database (as a ``del`` without
MAC), at most every ``interval`` seconds per network, and only while
the ingest is within :data:`BEHIND` bytes of EVERY journal's end (a
sharded network has one per shard): a backlog (the daemon was down, a
burst) may hold renewals the database has not seen yet.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.linux import journal
from flatnet.plan import dnsmasq as plan
from flatnet.service.troubles import Troubles

BEHIND = 256 << 10  # ~7,500 records: a few seconds of events


class Knobs(Protocol):
    """The two tuning values (``DhcpTuning``)."""

    @property
    def lease_expiry_grace(self) -> float: ...
    @property
    def lease_expiry_interval(self) -> float: ...


@dataclasses.dataclass(slots=True)
class LeaseExpiry:
    """Which networks the daemon expires leases of, and when next."""

    db: db_api.Database
    troubles: Troubles
    settings: plan.DhcpSettings
    host: str
    wallclock: Callable[[], float] = time.time
    due: dict[int, float] = dataclasses.field(default_factory=dict)
    journals: dict[int, tuple[str, ...]] = dataclasses.field(
        default_factory=dict
    )
    arming: set[int] = dataclasses.field(default_factory=set)

    def track(self, network_id: int, spec: plan.DnsmasqSpec) -> None:
        """Expire ``network_id``'s leases (a Lua hook) or not (sh:
        dnsmasq's ``init`` and ``del`` own the expiry)."""
        if spec.lua_hook:
            self.due.setdefault(network_id, 0.0)
            self.journals[network_id] = (spec.paths.events,)
        else:
            self.due.pop(network_id, None)

    def track_journals(self, network_id: int, paths: Sequence[str]) -> None:
        """Expire ``network_id``'s leases, recorded by Lua hooks into
        ``paths`` (a sharded network: every shard's journal, and the
        single dnsmasq's it grew from). The first expiry comes one lease
        time plus grace after the first poll: leases recorded before by
        an sh hook (no ``old`` per renewal: shards before the Lua hook,
        a network that just grew) have had a renewal journalled by
        then."""
        if network_id not in self.due:
            self.due[network_id] = 0.0
            self.arming.add(network_id)
        self.journals[network_id] = tuple(paths)

    def forget(self, network_id: int) -> None:
        """Expire no more of ``network_id`` (deleted, or served
        elsewhere: its leases are another host's to expire)."""
        self.due.pop(network_id, None)
        self.arming.discard(network_id)

    def caught_up(self, path: str) -> bool:
        """True if ``host``'s ingest of journal ``path`` is within
        :data:`BEHIND` bytes of its end and no rotated journal waits."""
        if journal.end(path + journal.OLD_SUFFIX) is not None:
            return False
        found = journal.end(path)
        if found is None:
            return True
        stored = db_api.journal_offset(self.db, path, host=self.host)
        offset = stored[1] if stored and stored[0] == found[0] else 0
        return found[1] - offset < BEHIND

    def poll(self, network_id: int, now: float, tuning: Knobs) -> None:
        """Release leases unconfirmed for the lease time plus
        ``tuning.lease_expiry_grace`` seconds (every
        ``tuning.lease_expiry_interval`` seconds at most); a database
        failure is a trouble of its own, retried at the next interval.
        ``now``: the caller's monotonic clock."""
        if network_id not in self.due or now < self.due[network_id]:
            return
        age = self.settings.dhcp_lease_time + tuning.lease_expiry_grace
        if network_id in self.arming:  # see track_journals
            self.arming.discard(network_id)
            self.due[network_id] = now + age
            return
        if not all(self.caught_up(p) for p in self.journals[network_id]):
            return  # retried at the next poll: a renewal may be unread
        self.due[network_id] = now + tuning.lease_expiry_interval
        older = datetime.datetime.fromtimestamp(
            self.wallclock() - age, datetime.UTC
        )
        where = f"dhcp expiry {network_id}"
        try:
            db_api.expire_leases(self.db, network_id, older)
        except exception.DatabaseError as exc:
            self.troubles.failed(where, exc)
            return
        self.troubles.ok(where)
