"""Keep each network's dnsmasq alive without the database or a disk
write (part of component ``dhcp``).

The reconcile loop can be held for a long time by the database (a write
waits up to the busy timeout, 60 s, while another process holds the
SQLite lock) and fails on every write while ``networks_path`` is full.
A dead dnsmasq must be restarted anyway. So a thread of its own
(:class:`DnsmasqKeeper`) checks every watched network's dnsmasq every
``interval`` and restarts a dead one with the argv the reconciler last
wanted, on the files that are on disk, with an ``init`` snapshot
rendered from the leases the reconciler last read. It never touches
the database; the snapshot is best effort (on a full disk dnsmasq starts
without it and its hook asks the Python ``flatnet-dhcpbridge init``).

The reconciler and the keeper share one lock per network: whoever holds
it may stop, start, HUP or rewrite that network's dnsmasq and files. The
keeper only tries the lock and skips a network whose lock is held.

:class:`DhcpTuning` (the component's knobs) lives here too.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from flatnet import exception
from flatnet.linux import dnsmasq_helper, files
from flatnet.model import Lease
from flatnet.plan import dnsmasq as plan
from flatnet.service.settings import (
    DhcpTuning as DhcpTuning,  # noqa: PLC0414
)

LOG = logging.getLogger(__name__)


class DnsmasqBackend(Protocol):
    """What the reconciler needs from one network's dnsmasq process."""

    def pid(self) -> int | None: ...
    def matches(self, pid: int, argv: list[str]) -> bool: ...
    def start(self, argv: list[str]) -> int: ...
    def reload(self, pid: int) -> None: ...
    def stop(self, pid: int) -> None: ...
    def wait_served(self, listen: str, timeout: float) -> bool: ...


@dataclasses.dataclass(slots=True)
class Watch:
    """One network's dnsmasq as the reconciler last wanted it."""

    bridge: str
    argv: list[str]
    listen: str
    snapshot: str  # the ``init`` snapshot path, "" without the fast path
    marker: str  # the pending-reload marker (dhcp_hostsdir.marker_path)
    proc: DnsmasqBackend
    lease_time: int
    leases: Sequence[Lease] | None = None  # as last read from the database
    helper: bool = False  # check its script helper (the Lua hook)
    next_try: float = 0.0
    delay: float = 0.0
    error: str = ""


def snapshot_path(spec: plan.DnsmasqSpec) -> str:
    """The ``init`` snapshot path ("" when no hook prints it: dnsmasq
    runs no ``init`` for a Lua script)."""
    return spec.paths.init if spec.events_env and not spec.lua_hook else ""


class DnsmasqKeeper:
    """Restarts dead dnsmasqs from memory and disk (see module doc)."""

    def __init__(
        self,
        interval: float = 0.05,
        served_timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.interval = interval
        self.served_timeout = served_timeout
        self.max_backoff = max_backoff
        self.clock: Callable[[], float] = time.monotonic
        self.wallclock: Callable[[], float] = time.time
        self.helper_alive: Callable[[int], bool] = dnsmasq_helper.has_helper
        self._watches: dict[int, Watch] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._mutex = threading.Lock()
        self._restarted: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- shared with the reconciler --------------------------------------
    def lock(self, network_id: int) -> threading.Lock:
        """The lock that guards ``network_id``'s dnsmasq and files."""
        with self._mutex:
            return self._locks.setdefault(network_id, threading.Lock())

    def watch(self, network_id: int, watch: Watch) -> None:
        """Keep ``network_id``'s dnsmasq running as ``watch`` says."""
        with self._mutex:
            self._watches[network_id] = watch

    def unwatch(self, network_id: int) -> None:
        with self._mutex:
            self._watches.pop(network_id, None)

    def set_leases(self, network_id: int, leases: Sequence[Lease]) -> None:
        """Newer leases for ``network_id``'s next ``init`` snapshot."""
        with self._mutex:
            if network_id in self._watches:
                self._watches[network_id].leases = leases

    def restarted(self) -> set[int]:
        """Networks restarted by the keeper since the last call."""
        with self._mutex:
            found, self._restarted = self._restarted, set()
        return found

    def start_locked(
        self, watch: Watch, leases: Sequence[Lease] | None = None
    ) -> bool:
        """Start ``watch``'s dnsmasq (caller holds its lock); True once
        it answers. The ``init`` snapshot (``leases``, else the cached
        ones) lives only for this start; a served start has read every
        file, so the pending-reload marker goes. Raises DnsmasqError."""
        leases = watch.leases if leases is None else leases
        wrote = bool(watch.snapshot) and leases is not None
        if wrote and leases is not None:
            wrote = self._write_snapshot(watch, leases)
        try:
            watch.proc.start(watch.argv)
            served = watch.proc.wait_served(watch.listen, self.served_timeout)
        finally:
            if wrote:
                self._delete(watch.snapshot)
        if served:
            self._delete(watch.marker)
        return served

    def _write_snapshot(self, watch: Watch, leases: Sequence[Lease]) -> bool:
        now = int(self.wallclock())
        text = plan.leases_text(leases, now, watch.lease_time)
        try:
            files.replace_file(watch.snapshot, text, mode=0o600, durable=False)
        except exception.HostNetworkError as exc:
            LOG.warning(
                "dnsmasq %s: starting without an init snapshot (the hook "
                "asks flatnet-dhcpbridge instead): %s",
                watch.bridge,
                exc,
            )
            return False
        return True

    def _delete(self, path: str) -> None:
        try:
            files.delete_file(path)
        except exception.HostNetworkError as exc:
            LOG.warning("could not remove %s: %s", path, exc)

    # --- the thread ---------------------------------------------------------
    def check(self) -> list[int]:
        """One pass: restart every watched dnsmasq that is dead and whose
        lock is free; returns the networks restarted."""
        with self._mutex:
            watches = list(self._watches.items())
        done = []
        for network_id, watch in watches:
            lock = self.lock(network_id)
            if self.clock() < watch.next_try or not lock.acquire(False):
                continue
            try:
                if self._revive(watch):
                    done.append(network_id)
            finally:
                lock.release()
        with self._mutex:
            self._restarted.update(done)
        return done

    def _revive(self, watch: Watch) -> bool:
        pid = watch.proc.pid()
        if pid is not None and not self._helper_lost(watch, pid):
            watch.delay = 0.0
            return False
        if pid is None:
            LOG.warning(
                "dnsmasq %s is not running; restarting it on the files on "
                "disk",
                watch.bridge,
            )
        try:
            served = self.start_locked(watch)
        except exception.FlatnetError as exc:
            self._failed(watch, str(exc))
            return False
        if not served:
            self._failed(watch, "started, but did not answer")
            return True
        watch.delay, watch.error = 0.0, ""
        return True

    def _helper_lost(self, watch: Watch, pid: int) -> bool:
        """True (and dnsmasq stopped) if ``watch`` wants its script
        helper checked and it is gone: an error escaped the Lua hook,
        no lease event is recorded any more."""
        if not watch.helper or self.helper_alive(pid):
            return False
        LOG.error(
            "dnsmasq %s (pid %d) lost its lease-script helper (an error "
            "escaped the Lua hook?): it records no lease events; "
            "restarting it",
            watch.bridge,
            pid,
        )
        try:
            watch.proc.stop(pid)
        except exception.FlatnetError as exc:
            self._failed(watch, f"cannot stop it: {exc}")
            return False
        return watch.proc.pid() is None

    def _failed(self, watch: Watch, error: str) -> None:
        watch.delay = min(max(watch.delay * 2, 0.1), self.max_backoff)
        watch.next_try = self.clock() + watch.delay
        if error != watch.error:
            LOG.error("dnsmasq %s: restart failed: %s", watch.bridge, error)
            watch.error = error

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the thread must live on
                LOG.exception("dnsmasq keeper pass failed; going on")

    def begin(self) -> None:
        """Start the thread (once); it exits when :meth:`close` is called
        or the process ends."""
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(
                target=self._run, name="dnsmasq-keeper", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
