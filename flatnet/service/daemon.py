"""The flatnet-network loop: poll, reconcile what changed, record.

A host is kept in line by *reconcilers* (:class:`Reconciler`), each
owning one component (``dhcp``, ``rules``; later the compute side's).
A reconciler's unit of work is a *readiness key*, a string such as
``network:3`` (later ``instance:<uuid>``, ``host:<name>``), with a
generation the database bumps in the same transaction as every change
of that key. Every ``sync_interval`` the daemon asks each reconciler to
:meth:`~Reconciler.poll` (journals, process liveness, and the wanted
generation of every key, one cheap query), calls
:meth:`~Reconciler.sync` once with the keys whose generation moved (or
that the reconciler reported dirty), and records the keys reported live
with ``host_state_record(host, component, applied=...)``, which is what
``wait_ready`` waits for. A key that could not be applied gets its
``last_error`` recorded instead (the text changes rarely: written only
when it does) and is retried with a growing delay (at most
``max_backoff``). Many changes between two polls cost one sync.

Isolation: a failure of one reconciler's poll or sync (an OSError, a
locked database, a FlatnetError) is caught here, logged once per
distinct error with periodic reminders (:mod:`flatnet.service.troubles`)
and never stops the other reconcilers or the next iteration. Every
``periodic_interval`` stale fixed IPs are disassociated (nova
``_disassociate_stale_fixed_ips``).

While a poll reports ``busy`` (lease events arrived) the loop pauses
only ``busy_interval`` before the next one: in a DHCP storm the events
reach the database one poll behind the journals instead of one poll
plus ``sync_interval`` (bench/dhcp_shards.py), and an idle host still
polls every ``sync_interval``.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from flatnet.db import api as db_api
from flatnet.service.settings import (
    DaemonTiming as DaemonTiming,  # noqa: PLC0414
)
from flatnet.service.troubles import Troubles

LOG = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Polled:
    """What a poll found: the wanted generation of every key the
    reconciler keeps, and keys to sync again although their generation
    did not move (a dead process, a periodic verification). ``busy``:
    the poll found work arriving (lease events in a journal): the next
    poll comes after ``busy_interval``, not ``sync_interval``."""

    generations: Mapping[str, int]
    dirty: frozenset[str] = frozenset()
    busy: bool = False  # events flowed (a journal grew): poll again soon


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The result of syncing one key: ``live`` once it is in effect;
    ``generation`` the one applied (default: the one polled); ``error``
    why not (an exception or a one-line text)."""

    live: bool
    generation: int | None = None
    error: BaseException | str | None = None


class Reconciler(Protocol):
    """A part of the host kept in line with the database."""

    component: str

    def prepare(self) -> None: ...
    def poll(self) -> Polled: ...
    def sync(self, keys: Mapping[str, int]) -> Mapping[str, Outcome]: ...
    def close(self) -> None: ...


Slot = tuple[str, str]  # (component, key)


class Daemon:
    """Runs the reconcilers of one host until stopped."""

    def __init__(
        self,
        db: db_api.Database,
        host: str,
        reconcilers: Sequence[Reconciler],
        timing: DaemonTiming | None = None,
    ) -> None:
        self.db = db
        self.host = host
        self.reconcilers = list(reconcilers)
        self.timing = timing or DaemonTiming()
        self.clock: Callable[[], float] = time.monotonic
        self.troubles = Troubles(self.timing.remind_every)
        self._applied: dict[Slot, int] = {}
        self._errors: dict[Slot, str] = {}  # last_error as recorded
        self._retry: dict[Slot, tuple[float, float]] = {}
        self._lagging: dict[Slot, str] = {}  # not live, and why
        self._next_periodic = 0.0
        self._busy = False  # a poll of the last iteration was busy

    def lagging(self) -> dict[Slot, str]:
        """Slots (component, key) not live after their last attempt, with
        the reason; a failed ``poll()`` shows as key ``*``."""
        return dict(self._lagging)

    # --- backoff --------------------------------------------------------
    def _due(self, slot: Slot, now: float) -> bool:
        return slot not in self._retry or now >= self._retry[slot][0]

    def _failed(self, slot: Slot, now: float) -> None:
        delay = self._retry.get(slot, (0.0, 0.05))[1]
        delay = min(delay * 2, self.timing.max_backoff)
        self._retry[slot] = (now + delay, delay)

    def _guard(self, where: str, call: Callable[[], T]) -> T | None:
        """``call()``, or None after logging its failure (isolation)."""
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - isolation edge, logged
            self.troubles.failed(where, exc)
            return None
        self.troubles.ok(where)
        return result

    # --- one iteration ----------------------------------------------------
    def run_once(self) -> int:
        """One loop iteration; returns how many keys were synced."""
        self._busy = False
        synced = sum(self._step(rec) for rec in self.reconcilers)
        self._guard("periodic", self._periodic)
        return synced

    def _step(self, rec: Reconciler) -> int:
        polled = self._guard(f"{rec.component} poll", rec.poll)
        if polled is None:
            self._lagging[(rec.component, "*")] = "poll failed"
            return 0
        self._lagging.pop((rec.component, "*"), None)
        self._busy |= polled.busy
        comp, now = rec.component, self.clock()
        for slot in [s for s in self._applied if s[0] == comp]:
            if slot[1] not in polled.generations:
                self._forget(slot)
        todo = {
            key: gen
            for key, gen in polled.generations.items()
            if (self._applied.get((comp, key)) != gen or key in polled.dirty)
            and self._due((comp, key), now)
        }
        if not todo:
            return 0
        outcomes = self._guard(f"{comp} sync", lambda: rec.sync(todo))
        if outcomes is None:
            text = self.troubles.open().get(f"{comp} sync", "sync failed")
            outcomes = {key: Outcome(False, error=text) for key in todo}
        self._record(comp, todo, outcomes)
        return len(todo)

    def _forget(self, slot: Slot) -> None:
        self._lagging.pop(slot, None)
        self._applied.pop(slot, None)
        self._errors.pop(slot, None)
        self._retry.pop(slot, None)

    def _record(
        self,
        comp: str,
        todo: Mapping[str, int],
        outcomes: Mapping[str, Outcome],
    ) -> None:
        applied: dict[str, int] = {}
        errors: dict[str, str] = {}
        now = self.clock()
        for key, polled in todo.items():
            slot = (comp, key)
            outcome = outcomes.get(key, Outcome(False, error="not synced"))
            if outcome.live:
                self._lagging.pop(slot, None)
                self.troubles.ok(f"{comp} {key}")
                self._retry.pop(slot, None)
                applied[key] = outcome.generation or polled
                continue
            error = outcome.error or "not live yet"
            text = self.troubles.failed(f"{comp} {key}", error)
            self._lagging[slot] = text
            self._failed(slot, now)
            if self._errors.get(slot) != text:
                errors[key] = text
        self._write(comp, applied, errors)

    def _write(
        self, comp: str, applied: dict[str, int], errors: dict[str, str]
    ) -> None:
        if not applied and not errors:
            return

        def record() -> bool:
            db_api.host_state_record(
                self.db, self.host, comp, applied=applied, errors=errors
            )
            return True

        if self._guard(f"{comp} record", record) is None:
            now = self.clock()
            for key in applied:  # sync again (cheap) once it can record
                self._failed((comp, key), now)
            return
        for key, generation in applied.items():
            self._applied[(comp, key)] = generation
            self._errors.pop((comp, key), None)
        for key, text in errors.items():
            self._errors[(comp, key)] = text

    _next_unfreeze = 0.0  # when settle_heap gives the frozen objects back

    def _settle(self) -> None:
        now = self.clock()
        unfreeze = now >= self._next_unfreeze
        if unfreeze:
            self._next_unfreeze = now + self.timing.periodic_interval
        settle_heap(unfreeze)

    def _periodic(self) -> None:
        now = self.clock()
        if now < self._next_periodic:
            return
        self._next_periodic = now + self.timing.periodic_interval
        older = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
            seconds=self.timing.disassociate_timeout
        )
        db_api.disassociate_stale_fixed_ips(self.db, self.host, older)

    def run(
        self, stop: threading.Event, wake: threading.Event | None = None
    ) -> None:
        """Loop until ``stop`` is set (SIGTERM in cmd/network.py); then
        close every reconciler (dnsmasq keeps running). ``wake`` (set by
        :mod:`flatnet.service.wake`, and by whoever sets ``stop``) ends
        a pause between two polls early."""
        for rec in self.reconcilers:
            rec.prepare()
        pause = stop if wake is None else wake
        try:
            while not stop.is_set():
                if self.run_once():
                    self._settle()
                pause.wait(self.pause())
                if wake is not None:
                    wake.clear()
        finally:
            for rec in self.reconcilers:
                rec.close()

    def pause(self) -> float:
        """Seconds to wait before the next poll: ``busy_interval`` after
        a busy poll, else ``sync_interval``."""
        if self._busy:
            return min(self.timing.busy_interval, self.timing.sync_interval)
        return self.timing.sync_interval


def settle_heap(unfreeze: bool) -> None:
    """After a round that synced: move every object alive now (the
    reconcilers' read models and caches: tens of thousands of objects at
    5,000 instances) out of the cyclic collector's reach with
    ``gc.freeze()``, so the next sync's allocations do not pay for
    scanning them (bench/firewall_service.py: +1 at 5,000 186 -> 168 ms
    under load 9.4). Every ``periodic_interval`` (``unfreeze``) the
    frozen objects are given back first, so cyclic garbage among them is
    collected at most one interval late."""
    if unfreeze:
        gc.unfreeze()
    gc.freeze()
