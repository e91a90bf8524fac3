"""IptablesBackend on ``iptables-restore --noflush`` (neutron style).

``apply`` plans from what this backend last committed
(:class:`~flatnet.plan.iptables.AppliedState`): per table whose part
of ours differs, one ``<binary>-restore --noflush`` payload with only
the changed lines (``-D``/``-I`` of single rules, ``:chain`` to flush
and re-fill a rewritten chain, ``-X`` of stale ones); nothing runs when
nothing changed. ``<binary>-save -t <table>`` is read only when nothing
is cached, on ``verify``/``refresh()``, or once after a delta failed.
iptables-restore commits each table atomically, so a failing line leaves
that table as it was.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
from collections.abc import Iterator, Sequence

from flatnet import exception
from flatnet.plan.iptables import (
    AppliedState,
    RuleSet,
    SavedTable,
    TablePlan,
    parse_save,
)

LOG = logging.getLogger(__name__)
BINARIES = ("iptables", "iptables-legacy", "iptables-nft")
#: Seconds to wait for the xtables lock (legacy); nft ignores it.
WAIT_SECONDS = 10
TIMEOUT = 120.0
_LINE_RE = re.compile(r"line:? (\d+)")


def _command(argv: Sequence[str], netns: str | None) -> list[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return [*prefix, *argv]


@contextlib.contextmanager
def _tool_errors(table: str, lines: Sequence[str] = ()) -> Iterator[None]:
    """The one place where a failed iptables tool becomes
    FirewallApplyError; a "line N" in stderr is mapped to our line."""
    try:
        yield
    except subprocess.CalledProcessError as exc:
        err = " ".join((exc.stderr or "").split())
        found = _LINE_RE.search(err)
        if found and 0 < int(found.group(1)) <= len(lines):
            err = (
                f"line {found.group(1)} {lines[int(found.group(1)) - 1]!r}"
                f" failed: {err}"
            )
        raise exception.FirewallApplyError(table=table, reason=err) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise exception.FirewallApplyError(
            table=table, reason=str(exc)
        ) from exc


def variant(binary: str = "iptables", netns: str | None = None) -> str:
    """ "legacy" or "nf_tables", from ``<binary> --version``."""
    with _tool_errors("-"):
        out = subprocess.run(
            _command([binary, "--version"], netns),
            check=True,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        ).stdout
    return "nf_tables" if "nf_tables" in out else "legacy"


class RestoreBackend:
    """Drive ``<binary>-save``/``<binary>-restore`` (in ``netns``)."""

    def __init__(
        self, binary: str = "iptables", netns: str | None = None
    ) -> None:
        if binary not in BINARIES:
            raise exception.ConfigError(
                reason=f"iptables binary must be one of {BINARIES}"
            )
        self.binary = binary
        self.netns = netns
        self._state = AppliedState()

    def __repr__(self) -> str:
        return f"RestoreBackend({self.binary!r}, netns={self.netns!r})"

    def _save(self, *args: str) -> str:
        with _tool_errors(args[-1] if args else "*"):
            return subprocess.run(
                _command([f"{self.binary}-save", *args], self.netns),
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            ).stdout

    def read(self) -> dict[str, SavedTable]:
        """Parse one ``<binary>-save`` of every table."""
        return parse_save(self._save())

    def read_table(self, name: str) -> SavedTable | None:
        """Parse ``<binary>-save -t <name>`` (TableIO)."""
        return parse_save(self._save("-t", name)).get(name)

    def apply(self, ruleset: RuleSet, verify: bool = False) -> list[TablePlan]:
        """See IptablesBackend.apply; tables already right are skipped."""
        return self._state.apply(ruleset, self, verify)

    def refresh(self) -> None:
        """See IptablesBackend.refresh."""
        self._state.forget()

    def commit(self, plan: TablePlan) -> None:
        """Send ``plan`` as one atomic ``--noflush`` restore (TableIO)."""
        lines = plan.restore_lines()
        argv = [
            f"{self.binary}-restore",
            "--noflush",
            f"--wait={WAIT_SECONDS}",
        ]
        LOG.debug(
            "iptables-restore %s: %d lines (%s)",
            plan.table,
            len(lines),
            self.netns or "host",
        )
        with _tool_errors(plan.table, lines):
            subprocess.run(
                _command(argv, self.netns),
                input="\n".join(lines) + "\n",
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
