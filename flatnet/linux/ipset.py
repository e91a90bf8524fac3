"""The ipset executor: our sets, applied with one ``ipset restore``.

Owns one external system, the ``ipset`` command (ipset(8)), in the
root namespace or ``netns``. Sets of ours are those named
``<prefix>-*``; foreign sets are read past and never touched.

Ordering contract (the caller's): :meth:`IpsetBackend.ensure` creates
and updates sets **before** the iptables apply that references them;
:meth:`IpsetBackend.prune` destroys the unwanted ones **after** it
(the kernel refuses to destroy a set a rule still uses). Like the
iptables backends, ``ensure`` plans from what it last applied (no read)
unless ``verify`` or nothing is known; a failed payload is re-planned
once from a fresh read. ``ipset restore`` stops at the first failing
line (earlier lines stay applied): the error names the set and the next
call reads the live sets again, so it converges. Every failure of the
command becomes :class:`~flatnet.exception.IpsetError` in one place.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
from collections.abc import Iterator, Sequence

from flatnet import exception
from flatnet.plan.ipset import (
    TEMP_SUFFIX,
    IpsetPlan,
    IpSetSpec,
    LiveSet,
    diff_sets,
    owned_set,
    parse_save,
    plan_ensure,
    plan_prune,
)

LOG = logging.getLogger(__name__)
TIMEOUT = 60.0
_LINE_RE = re.compile(r"Error in line (\d+):\s*(.*)")


def _command(argv: Sequence[str], netns: str | None) -> list[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return [*prefix, *argv]


@contextlib.contextmanager
def _ipset_errors(plan: IpsetPlan | None, what: str) -> Iterator[None]:
    """The one place a failed ipset command becomes IpsetError; an
    ``Error in line N`` is mapped to the set that line acts on."""
    try:
        yield
    except subprocess.CalledProcessError as exc:
        err = " ".join((exc.stderr or "").split())
        found = _LINE_RE.search(err)
        name = what
        if plan is not None and found:
            number = int(found.group(1))
            if 0 < number <= len(plan.lines):
                name = plan.set_of_line(number)
                err = f"{plan.lines[number - 1]!r} failed: {found.group(2)}"
        raise exception.IpsetError(name=name, reason=err) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise exception.IpsetError(name=what, reason=str(exc)) from exc


class IpsetBackend:
    """Our ``<prefix>-*`` sets (in ``netns`` if given)."""

    def __init__(self, prefix: str, netns: str | None = None) -> None:
        self.prefix = prefix
        self.netns = netns
        #: our sets as last applied or read; None: read before planning
        self._known: dict[str, LiveSet] | None = None

    def __repr__(self) -> str:
        return f"IpsetBackend({self.prefix!r}, netns={self.netns!r})"

    def save_text(self) -> str:
        """``ipset save`` (every set, ours or not)."""
        with _ipset_errors(None, f"{self.prefix}-*"):
            return subprocess.run(
                _command(["ipset", "save"], self.netns),
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            ).stdout

    def read(self) -> dict[str, LiveSet]:
        """Our live sets (one ``ipset save``)."""
        out = self.save_text()
        return {
            name: live
            for name, live in parse_save(out).items()
            if owned_set(name, self.prefix)
        }

    def refresh(self) -> None:
        """Forget what was applied: the next call reads the live sets."""
        self._known = None

    def _live(self, verify: bool) -> tuple[dict[str, LiveSet], bool]:
        if verify or self._known is None:
            self._known = self.read()
            return self._known, True
        return self._known, False

    def ensure(
        self, desired: Sequence[IpSetSpec], verify: bool = False
    ) -> IpsetPlan:
        """Create or update every desired set, one restore call (before
        the iptables apply). Returns the plan run (empty: nothing to
        do). Raises IpsetError naming the set; what is live is then
        read again on the next call."""
        self._check_owned(desired)
        live, fresh = self._live(verify)
        plan = plan_ensure(live, desired)
        try:
            self._restore(plan)
        except exception.IpsetError as exc:
            self._known = None
            if fresh:
                raise
            LOG.warning("ipset delta failed, re-reading: %s", exc)
            live, _ = self._live(True)
            plan = plan_ensure(live, desired)
            try:
                self._restore(plan)
            except exception.IpsetError:
                self._known = None
                raise
        self._remember(live, desired)
        return plan

    def prune(self, desired: Sequence[IpSetSpec]) -> IpsetPlan:
        """Destroy our sets that are not desired (after the iptables
        apply that stopped using them). Raises IpsetError naming the
        set (e.g. still in use by a rule)."""
        live, _ = self._live(False)
        plan = plan_prune(live, desired)
        try:
            self._restore(plan)
        except exception.IpsetError:
            self._known = None
            raise
        for name in plan.destroyed:
            live.pop(name, None)
        return plan

    def differences(self, desired: Sequence[IpSetSpec]) -> list[str]:
        """What differs between the live sets and ``desired`` (reads)."""
        self._known = self.read()
        return diff_sets(self._known, desired)

    def _check_owned(self, desired: Sequence[IpSetSpec]) -> None:
        for spec in desired:
            if not owned_set(spec.name, self.prefix):
                raise exception.IpsetError(
                    name=spec.name, reason=f"not a {self.prefix}-* set"
                )

    def _remember(
        self, live: dict[str, LiveSet], desired: Sequence[IpSetSpec]
    ) -> None:
        """After a successful ensure: the desired sets as applied, the
        other sets of ours untouched, no temporary set left."""
        known = {n: s for n, s in live.items() if not n.endswith(TEMP_SUFFIX)}
        known.update({spec.name: LiveSet.of(spec) for spec in desired})
        self._known = known

    def _restore(self, plan: IpsetPlan) -> None:
        if not plan.empty:
            self.restore(plan)

    def restore(self, plan: IpsetPlan) -> None:
        """Run ``plan`` as one ``ipset -exist restore`` (stops at the
        first failing line). Raises IpsetError naming the set."""
        LOG.debug(
            "ipset restore: %d lines (%s)",
            len(plan.lines),
            self.netns or "host",
        )
        with _ipset_errors(plan, f"{self.prefix}-*"):
            subprocess.run(
                _command(["ipset", "-exist", "restore"], self.netns),
                input="\n".join(plan.lines) + "\n",
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
