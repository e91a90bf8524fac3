"""The iptables executor seam: the backend protocol, the applied-state
cache both backends share, and backend selection.

Two backends apply a :class:`flatnet.plan.iptables.RuleSet`:
:class:`~flatnet.linux.iptables_restore.RestoreBackend` (``iptables-restore
--noflush``; follows whatever ``iptables`` the host has, nf_tables on
Debian 12) and :class:`~flatnet.linux.iptables_iptc.IptcBackend`
(python-iptables; legacy x_tables only, ldx/python-iptables#319). Both
change only the tables whose part of ours differs, one atomic commit per
table, and leave foreign rules and their order alone.

:class:`AppliedState` remembers, per backend, our part of each table as
last committed or verified. ``apply`` plans from it
(:func:`~flatnet.plan.iptables.plan_delta`): no read, only the changed
lines, and nothing at all when nothing changed. Drift (someone flushed a
chain of ours) is found by ``apply(ruleset, verify=True)`` or after
``refresh()``, which re-read the live tables; the daemon does that
periodically and ``flatnet-manage verify|repair`` always does.
"""

from __future__ import annotations

import logging
from typing import Protocol

from flatnet import exception
from flatnet.plan.iptables import (
    RuleSet,
    SavedTable,
    Table,
    TablePlan,
    ordered,
    plan_delta,
    plan_table,
)

LOG = logging.getLogger(__name__)
BACKEND_CHOICES = ("auto", "restore", "iptc")


class IptablesBackend(Protocol):
    """What the service layer needs from an iptables executor."""

    def read(self) -> dict[str, SavedTable]:
        """The live filter/nat/mangle tables (missing ones are absent)."""

    def read_table(self, name: str) -> SavedTable | None:
        """The live table ``name`` alone (None: it does not exist)."""

    def apply(self, ruleset: RuleSet, verify: bool = False) -> list[TablePlan]:
        """Make our part of the live tables equal ``ruleset``.

        Plans from what this backend last applied (no read) unless
        ``verify`` or nothing is known yet, then from the live tables.
        Returns the non-empty per-table plans it committed (empty when
        nothing differed). Raises FirewallApplyError naming the table
        and the failing rule; that table is then unchanged.
        """

    def refresh(self) -> None:
        """Forget what was applied: the next apply re-reads and so
        repairs drift."""


class TableIO(Protocol):
    """One backend's access to one table during an apply."""

    def read_table(self, name: str) -> SavedTable | None:
        """The live table ``name`` (None: it does not exist yet)."""

    def commit(self, plan: TablePlan) -> None:
        """Commit ``plan`` atomically or raise FirewallApplyError."""


class AppliedState:
    """Our part of each table, per (prefix, table), as last committed or
    verified live by one backend; shared by every backend."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], Table] = {}

    def forget(self) -> None:
        """Drop everything: the next apply reads the live tables."""
        self._known.clear()

    def apply(
        self, ruleset: RuleSet, io: TableIO, verify: bool = False
    ) -> list[TablePlan]:
        """See IptablesBackend.apply; ``io`` reads and commits."""
        if verify:
            self.forget()
        done = []
        for desired in ordered(ruleset.tables):
            plan = self._apply_table(ruleset.prefix, desired, io)
            if not plan.empty:
                done.append(plan)
        return done

    def _apply_table(
        self, prefix: str, desired: Table, io: TableIO
    ) -> TablePlan:
        """Delta from the cache if possible; if that fails (a stale
        cache makes ``-D``/``-I`` fail) re-read and plan in full once,
        whose error is raised. Unknown until committed."""
        key = (prefix, desired.name)
        known = self._known.pop(key, None)
        delta = None if known is None else plan_delta(known, desired)
        if delta is not None:
            try:
                if not delta.empty:
                    io.commit(delta)
            except exception.FirewallApplyError as exc:
                LOG.warning("Delta to %s failed, re-reading: %s", key, exc)
            else:
                self._known[key] = desired
                return delta
        plan = plan_table(desired, io.read_table(desired.name), prefix)
        if not plan.empty:
            io.commit(plan)
        self._known[key] = desired
        return plan


def select_backend(
    choice: str,
    binary: str = "iptables",
    netns: str | None = None,
) -> IptablesBackend:
    """The backend for ``[DEFAULT] iptables_backend``.

    "auto" picks iptc only when ``<binary> --version`` says legacy, since
    python-iptables cannot see nf_tables rules; otherwise restore.
    Raises ConfigError for an unknown choice.
    """
    # Imported here: only the chosen backend's library gets loaded.
    from flatnet.linux import iptables_restore  # noqa: PLC0415

    if choice not in BACKEND_CHOICES:
        raise exception.ConfigError(
            reason=f"iptables_backend must be one of {BACKEND_CHOICES}, "
            f"not {choice!r}"
        )
    if choice == "auto":
        legacy = iptables_restore.variant(binary) == "legacy"
        choice = "iptc" if legacy else "restore"
    if choice == "iptc":
        from flatnet.linux import iptables_iptc  # noqa: PLC0415

        return iptables_iptc.IptcBackend(netns=netns)
    return iptables_restore.RestoreBackend(binary=binary, netns=netns)
