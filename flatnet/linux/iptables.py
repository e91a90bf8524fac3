"""The iptables executor seam: the backend protocol and backend selection.

Two backends apply a :class:`flatnet.plan.iptables.RuleSet`:
:class:`~flatnet.linux.iptables_restore.RestoreBackend` (``iptables-restore
--noflush``; follows whatever ``iptables`` the host has, nf_tables on
Debian 12) and :class:`~flatnet.linux.iptables_iptc.IptcBackend`
(python-iptables; legacy x_tables only, ldx/python-iptables#319). Both
change only the tables whose part of ours differs, one atomic commit per
table, and leave foreign rules and their order alone.

Each backend plans through its own
:class:`~flatnet.plan.iptables.AppliedState` (pure, in the plan layer):
our part of each table as last committed or verified, so ``apply`` sends
only the changed lines without reading, and nothing at all when nothing
changed. Drift (someone flushed a chain of ours) is found by
``apply(ruleset, verify=True)`` or after ``refresh()``, which re-read the
live tables; the daemon does that periodically and ``flatnet-manage
verify|repair`` always does. The backends import nothing from each other
or from this module; only :func:`select_backend` imports them (lazily).
"""

from __future__ import annotations

from typing import Protocol

from flatnet import exception
from flatnet.plan.iptables import RuleSet, SavedTable, TablePlan

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
