"""FakeIptables: an in-memory IptablesBackend that keeps resulting state.

It executes the same restore lines the real backend sends, with
iptables' rules (``:chain`` creates or flushes, ``-D`` removes the first
identical rule, ``-X`` needs an empty, unreferenced chain, a target must
be a known extension or an existing chain) and commits a table only if
every line succeeded. Planning goes through the same
:class:`~flatnet.plan.iptables.AppliedState` cache as the real backends;
``reads`` and ``sent`` (one list of restore lines per commit) let tests
see what a sync cost. The contract suite runs it next to the real
backends, which keeps it honest.
"""

from __future__ import annotations

import copy

from flatnet import exception
from flatnet.plan.iptables import (
    BUILTIN_CHAINS,
    AppliedState,
    RuleSet,
    SavedTable,
    TablePlan,
    canonical_rule,
    parse_rule,
)

KNOWN_TARGETS = frozenset({
    "ACCEPT", "DROP", "REJECT", "RETURN", "LOG", "SNAT", "DNAT",
    "REDIRECT", "MASQUERADE", "CHECKSUM",
})  # fmt: skip

State = dict[str, list[str]]


class FakeIptables:
    """filter/nat/mangle as {chain: [canonical rule]} (builtins first)."""

    def __init__(self) -> None:
        self.tables: dict[str, State] = {
            name: {c: [] for c in chains}
            for name, chains in BUILTIN_CHAINS.items()
        }
        self.commits = 0
        self.reads = 0
        self.sent: list[list[str]] = []
        self._state = AppliedState()

    def read(self) -> dict[str, SavedTable]:
        self.reads += 1
        return {
            name: SavedTable(name, {c: tuple(r) for c, r in chains.items()})
            for name, chains in self.tables.items()
        }

    def read_table(self, name: str) -> SavedTable | None:
        self.reads += 1
        chains = self.tables.get(name)
        if chains is None:
            return None
        return SavedTable(name, {c: tuple(r) for c, r in chains.items()})

    def apply(self, ruleset: RuleSet, verify: bool = False) -> list[TablePlan]:
        return self._state.apply(ruleset, self, verify)

    def refresh(self) -> None:
        self._state.forget()

    def commit(self, plan: TablePlan) -> None:
        lines = plan.restore_lines()
        self.sent.append(lines)
        self.restore(plan.table, lines[1:-1])

    def restore(self, table: str, lines: list[str]) -> None:
        """Run restore lines on a copy; commit only if all succeed."""
        state = copy.deepcopy(self.tables[table])
        for number, line in enumerate(lines, start=2):
            try:
                _execute(state, line)
            except (ValueError, KeyError) as exc:
                raise exception.FirewallApplyError(
                    table=table, reason=f"line {number} {line!r} failed: {exc}"
                ) from exc
        self.tables[table] = state
        self.commits += 1

    def command(self, table: str, line: str) -> None:
        """One iptables CLI command (``-I INPUT 1 -j X``, ``-F c``...)."""
        self.restore(table, [line])


def _execute(state: State, line: str) -> None:  # noqa: C901 - a dispatcher
    op, _, rest = line.partition(" ")
    if op.startswith(":"):
        state[op[1:]] = []
        return
    chain, _, spec = rest.partition(" ")
    if op == "-N":
        if chain in state:
            raise ValueError("Chain already exists")
        state[chain] = []
        return
    rules = state[chain]
    if op == "-A":
        rules.append(_checked(state, spec))
    elif op == "-I":
        pos, _, spec = spec.partition(" ")
        if int(pos) > len(rules) + 1:
            raise ValueError("Index of insertion too big")
        rules.insert(int(pos) - 1, _checked(state, spec))
    elif op == "-D":
        rules.remove(canonical_rule(spec))
    elif op == "-F":
        rules.clear()
    elif op == "-X":
        if rules or any(
            r.endswith(f"-j {chain}") for c in state.values() for r in c
        ):
            raise ValueError(f"chain {chain} is not empty or referenced")
        del state[chain]
    else:
        raise ValueError(f"unsupported {op}")


def _checked(state: State, spec: str) -> str:
    target = parse_rule(spec).target
    if target and target not in KNOWN_TARGETS and target not in state:
        raise ValueError(f"Chain '{target}' does not exist")
    return canonical_rule(spec)
