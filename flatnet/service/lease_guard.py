"""Keep a network's lease journal writable; recover lost lease events
(part of component ``dhcp``).

A hook that cannot append its record (the filesystem under
networks_path is full) counts it in the journal's loss file
(:func:`flatnet.linux.journal.read_losses`). :meth:`JournalGuard.poll`,
called by the DHCP reconciler every loop:

1. tops up the journal's reserve (fallocate past the end of the file:
   appends go on while the filesystem is full, ~30,000 records per MiB;
   1 MiB, at most an eighth of the filesystem) and warns once when it
   cannot (no space left);
2. warns with the number of records lost since the last poll (the
   figure the operator sees; the loss file keeps the totals);
3. once the reserve is back, makes dnsmasq replay its leases: a SIGHUP
   makes dnsmasq run its script with ``old`` for EVERY lease it holds
   (dnsmasq.c async_event: EVENT_RELOAD -> rerun_scripts), and ``old``
   marks the address leased like ``add`` (service/leases.py). That
   brings back every lost ``add``; then the losses are marked recovered
   in the loss file. A lost ``del`` is not replayed (dnsmasq no longer
   holds that lease): the address stays leased in the database until
   the periodic ``disassociate_stale_fixed_ips`` frees it
   (``fixed_ip_disassociate_timeout``), as in nova.

If dnsmasq is not running, its leases are gone with it: the restarted
dnsmasq learns them again when each client renews (it ACKs a renewal of
a configured host and runs ``add``), so the losses are marked recovered
with a WARNING saying so.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Protocol

from flatnet import exception
from flatnet.linux import journal

LOG = logging.getLogger(__name__)


class Replayer(Protocol):
    """What the guard needs from the network's dnsmasq."""

    def pid(self) -> int | None: ...
    def reload(self, pid: int) -> None: ...


@dataclasses.dataclass(slots=True)
class JournalGuard:
    """The reserve and the loss recovery of one journal."""

    events: str
    bridge: str
    reserve_bytes: int = journal.RESERVE_BYTES
    replay_interval: float = 5.0
    clock: Callable[[], float] = time.monotonic
    last_replay: float = -math.inf
    seen_lost: int = -1
    full: bool = False
    errors_seen: int = 0
    errors_keep: int = 32768

    def poll(self, dnsmasq: Replayer) -> journal.Losses:
        """One round (see the module doc); the current counters."""
        writable = self._reserve()
        self._hook_errors()
        losses = journal.read_losses(journal.loss_path(self.events))
        if self.seen_lost < 0:
            self.seen_lost = losses.recovered
        if losses.lost > self.seen_lost:
            LOG.warning(
                "journal %s: %d lease events could not be written "
                "(%d lost in total, %d recovered)",
                self.events,
                losses.lost - self.seen_lost,
                losses.lost,
                losses.recovered,
            )
            self.seen_lost = losses.lost
        due = self.clock() - self.last_replay >= self.replay_interval
        if losses.pending and writable and due:
            self._replay(dnsmasq, losses)
        return losses

    def prepare(self) -> bool:
        """Create the journal and the loss file (0600) before a hook
        could: the Lua hook creates a missing one with dnsmasq's umask
        (0644). True if the journal has its reserve."""
        return self._reserve()

    def _reserve(self) -> bool:
        """True if the journal has its reserve (or no fallocate)."""
        try:
            journal.ensure_loss_file(journal.loss_path(self.events))
            info = os.statvfs(os.path.dirname(self.events))
            size = min(self.reserve_bytes, info.f_blocks * info.f_frsize // 8)
            journal.reserve(self.events, size)
        except OSError as exc:
            if exc.errno == errno.EOPNOTSUPP:
                return True  # no preallocation here: appends may fail
            if not self.full:
                LOG.warning(
                    "journal %s: cannot reserve %d bytes (%s); lease "
                    "events are kept only while the reserve lasts",
                    self.events,
                    self.reserve_bytes,
                    exc.strerror or exc,
                )
            self.full = True
            return False
        if self.full:
            LOG.warning("journal %s: space is back", self.events)
        self.full = False
        return True

    def _hook_errors(self) -> None:
        """Report what the Lua hook wrote to its error file since the
        last poll (one WARNING per poll); empty the file once it holds
        ``errors_keep`` bytes (the hook stops writing at 64 KiB)."""
        path = journal.error_path(self.events)
        try:
            size, text = journal.read_new(path, self.errors_seen)
            lines = text.splitlines()
            if lines and size != self.errors_seen:
                LOG.warning(
                    "lease hook of %s: %d errors in %s (last: %s)",
                    self.bridge,
                    len(lines),
                    path,
                    lines[-1],
                )
            self.errors_seen = size
            if size >= self.errors_keep:
                journal.truncate(path)
                self.errors_seen = 0
        except OSError as exc:
            LOG.warning("lease hook errors %s: %s", path, exc)

    def _replay(self, dnsmasq: Replayer, losses: journal.Losses) -> None:
        """HUP dnsmasq (``old`` for every lease), then mark recovered."""
        self.last_replay = self.clock()
        pid = dnsmasq.pid()
        if pid is None:
            LOG.warning(
                "dnsmasq %s is not running: %d lost lease events come "
                "back as 'add' when the clients renew",
                self.bridge,
                losses.pending,
            )
        else:
            try:
                dnsmasq.reload(pid)
            except exception.DnsmasqError as exc:
                LOG.warning("journal %s: replay failed: %s", self.events, exc)
                return
            LOG.warning(
                "dnsmasq %s: replaying its leases (SIGHUP pid %d) to "
                "recover %d lost lease events",
                self.bridge,
                pid,
                losses.pending,
            )
        try:
            journal.mark_recovered(journal.loss_path(self.events), losses.lost)
        except OSError as exc:
            LOG.warning("journal %s: %s", self.events, exc)
