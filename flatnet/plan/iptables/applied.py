"""The applied-state cache every iptables backend plans from.

:class:`AppliedState` remembers, per (prefix, table), our part of the
table as last committed or verified live, and decides per table what to
send: a delta from that (:func:`~flatnet.plan.iptables.delta.plan_delta`:
no read, only the changed lines, nothing at all when nothing changed),
or, when nothing is known or the delta failed, a full plan from the
table read live. The reading and committing are the caller's
(:class:`TableIO`, implemented by each backend), so this module stays
pure and every backend (and the test fake) shares one implementation;
the backends in ``flatnet.linux`` need not import each other.
"""

from __future__ import annotations

import logging
from typing import Protocol

from flatnet import exception
from flatnet.plan.iptables.delta import TablePlan, plan_delta, plan_table
from flatnet.plan.iptables.model import RuleSet, SavedTable, Table, ordered

LOG = logging.getLogger(__name__)


class TableIO(Protocol):
    """One backend's access to one table during an apply."""

    def read_table(self, name: str) -> SavedTable | None:
        """The live table ``name`` (None: it does not exist yet)."""

    def commit(self, plan: TablePlan) -> None:
        """Commit ``plan`` atomically or raise FirewallApplyError."""


class AppliedState:
    """Our part of each table, per (prefix, table), as last committed or
    verified live by one backend."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], Table] = {}

    def forget(self) -> None:
        """Drop everything: the next apply reads the live tables."""
        self._known.clear()

    def apply(
        self, ruleset: RuleSet, io: TableIO, verify: bool = False
    ) -> list[TablePlan]:
        """Make our part of the live tables equal ``ruleset``, one
        commit per table that differs, in table order; returns the
        non-empty plans committed. ``verify`` forgets first, so every
        table is read. Raises FirewallApplyError (that table unchanged,
        and unknown until the next apply reads it)."""
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
