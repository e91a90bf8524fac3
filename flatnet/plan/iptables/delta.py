"""Planning: the changes that turn what is there into what we want.

PURE. Two planners produce the same :class:`TablePlan`:
:func:`plan_table` compares with the live table (``iptables-save``),
:func:`plan_delta` with our part as last applied or verified (see
:mod:`flatnet.plan.iptables.applied`), so a small change costs
O(changed chains) and no read. Owned chains are edited in place when
little changed, rewritten otherwise; foreign rules are never touched:
in chains we do not own, only exact jumps to our chains are ours.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from flatnet.plan.iptables.grammar import canonical_rule
from flatnet.plan.iptables.model import (
    Anchor,
    Chain,
    RuleSet,
    SavedTable,
    Table,
    empty_table,
    ordered,
)
from flatnet.plan.iptables.names import is_owned_chain


@dataclasses.dataclass(frozen=True, slots=True)
class AnchorOp:
    """One rule-level change (``-D`` by spec, ``-I`` at N, ``-A``)."""

    op: Literal["-D", "-I", "-A"]
    chain: str
    rule: str
    position: int | None = None

    def line(self) -> str:
        pos = f" {self.position}" if self.position is not None else ""
        return f"{self.op} {self.chain}{pos} {self.rule}"


@dataclasses.dataclass(frozen=True)
class TablePlan:
    """What must change in one table to reach the desired state."""

    table: str
    create_chains: tuple[str, ...] = ()
    rewrite: tuple[Chain, ...] = ()
    delete_chains: tuple[str, ...] = ()
    anchor_ops: tuple[AnchorOp, ...] = ()
    #: small in-place changes of owned chains (-D unique rule / -I at N)
    edits: tuple[AnchorOp, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.create_chains
            or self.rewrite
            or self.delete_chains
            or self.anchor_ops
            or self.edits
        )

    def changed_chains(self) -> list[str]:
        """Owned chains rewritten or edited, in plan order."""
        return _unique(
            [*(c.name for c in self.rewrite), *(op.chain for op in self.edits)]
        )

    def restore_lines(self) -> list[str]:
        """The ``iptables-restore --noflush`` payload, one line each.

        ``:chain - [0:0]`` flushes (or creates) a chain under --noflush;
        builtin chains are never declared, so foreign rules stay.
        """
        lines = [f"*{self.table}"]
        lines += [f":{c} - [0:0]" for c in self.create_chains]
        lines += [f":{c.name} - [0:0]" for c in self.rewrite]
        lines += [f":{c} - [0:0]" for c in self.delete_chains]
        for chain in self.rewrite:
            lines += [f"-A {chain.name} {rule}" for rule in chain.rules]
        lines += [op.line() for op in self.edits]
        lines += [op.line() for op in self.anchor_ops]
        lines += [f"-X {c}" for c in self.delete_chains]
        return [*lines, "COMMIT"]


def _plain_jump_target(rule: str) -> str | None:
    parts = rule.split(" ")
    return parts[1] if len(parts) == 2 and parts[0] == "-j" else None


def _anchor_ops(
    chain: str,
    live: Sequence[str],
    wanted: Sequence[Anchor],
    prefix: str,
) -> list[AnchorOp]:
    """Deletes of stale/duplicate jumps of ours, then inserts of missing
    anchors (top ones after the previous anchor, bottom ones appended)."""
    want = [canonical_rule(a.rule) for a in wanted]
    ops: list[AnchorOp] = []
    rules, seen = list(live), set()
    for rule in list(rules):
        target = _plain_jump_target(rule)
        stale = (
            target is not None
            and is_owned_chain(target, prefix)
            and rule not in want
        )
        if stale or (rule in want and rule in seen):
            # NOTE: -D by spec removes the first identical rule.
            ops.append(AnchorOp("-D", chain, rule))
            rules.remove(rule)
        seen.add(rule)
    last = -1
    for anchor, rule in zip(wanted, want, strict=True):
        if rule in rules:
            last = rules.index(rule)
        elif anchor.position == "bottom":
            ops.append(AnchorOp("-A", chain, anchor.rule))
            rules.append(rule)
        else:
            last += 1
            ops.append(AnchorOp("-I", chain, anchor.rule, last + 1))
            rules.insert(last, rule)
    return ops


def _owned_changes(
    chains: Iterable[Chain],
    have_of: Callable[[Chain], tuple[str, ...] | None],
) -> tuple[list[Chain], list[AnchorOp]]:
    """(rewrites, in-place edits) turning each chain's current canonical
    rules (``have_of``; None: missing) into the chain's rules."""
    rewrite: list[Chain] = []
    edits: list[AnchorOp] = []
    for chain in chains:
        have = have_of(chain)
        want = chain.canonical()
        if have == want:
            continue
        edit = None if have is None else _chain_edit(chain, have, want)
        if edit is None:
            rewrite.append(chain)
        else:
            edits += edit
    return rewrite, edits


def plan_table(
    desired: Table, live: SavedTable | None, prefix: str
) -> TablePlan:
    """The changes that turn ``live`` into ``desired`` for our part only.

    Owned chains whose canonical rules already match are left alone;
    chains of ``prefix`` that are no longer wanted are deleted.
    """
    live = live or empty_table(desired.name)
    owned = {c.name for c in desired.chains}
    rewrite, edits = _owned_changes(
        desired.chains, lambda c: live.chains.get(c.name)
    )
    stale = tuple(
        n for n in live.chains if is_owned_chain(n, prefix) and n not in owned
    )
    create = tuple(c for c in desired.shared_chains if c not in live.chains)
    by_chain: dict[str, list[Anchor]] = {}
    for anchor in desired.anchors:
        by_chain.setdefault(anchor.chain, []).append(anchor)
    ops: list[AnchorOp] = []
    for name in _unique([*by_chain, *live.chains]):
        if name in owned or name in stale:
            continue
        ops += _anchor_ops(
            name, live.chains.get(name, ()), by_chain.get(name, []), prefix
        )
    return TablePlan(
        desired.name, create, tuple(rewrite), stale, tuple(ops), tuple(edits)
    )


def plan_delta(known: Table, desired: Table) -> TablePlan | None:
    """The changes from ``known`` (our part as last applied or verified)
    to ``desired``, without reading the live table.

    Costs O(changed chains): chains whose nova text is unchanged are
    skipped without canonicalising. Returns None when the anchors or
    shared chains differ, since placing a jump needs the live foreign
    rules: the caller then reads the table and uses :func:`plan_table`.
    Correct only if the live table still holds ``known``; a stale cache
    shows up as a failing ``-D``/``-I`` or in the periodic full check.
    """
    frame_same = known.anchors == desired.anchors
    if not frame_same or known.shared_chains != desired.shared_chains:
        return None
    if known == desired:
        return TablePlan(desired.name)
    before = {c.name: c for c in known.chains}
    changed = [  # memoised chains: identity first, then equality
        c
        for c in desired.chains
        if (b := before.get(c.name)) is not c and b != c
    ]
    rewrite, edits = _owned_changes(
        changed,
        lambda c: before[c.name].canonical() if c.name in before else None,
    )
    wanted = {c.name for c in desired.chains}
    stale = tuple(n for n in before if n not in wanted)
    return TablePlan(desired.name, (), tuple(rewrite), stale, (), tuple(edits))


def _chain_edit(
    chain: Chain, have: Sequence[str], want: Sequence[str]
) -> list[AnchorOp] | None:
    """In-place ops for a small change (floating IPs added or removed
    anywhere), or None when a rewrite is simpler or a deleted rule is not
    unique (``-D`` by spec removes the first one). Only the part between
    the common head and tail is diffed."""
    most = min(len(have), len(want))
    head = next((i for i in range(most) if have[i] != want[i]), most)
    most -= head
    tail = next((i for i in range(most) if have[~i] != want[~i]), most)
    old, new = have[head : len(have) - tail], want[head : len(want) - tail]
    gone: list[str] = []
    added: list[int] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":  # delete, insert or replace
            gone += old[i1:i2]
            added += range(head + j1, head + j2)
    if len(gone) + len(added) > max(8, len(want) // 8):
        return None
    counts = collections.Counter(have)
    if any(counts[rule] != 1 for rule in gone):
        return None
    ops = [AnchorOp("-D", chain.name, rule) for rule in gone]
    size = len(have) - len(gone)
    for n in added:  # ascending final positions: each lands in place
        rule = chain.rules[n]
        if n == size:  # NOTE: -A needs no rule lookup on nf_tables
            ops.append(AnchorOp("-A", chain.name, rule))
        else:
            ops.append(AnchorOp("-I", chain.name, rule, n + 1))
        size += 1
    return ops


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def plan_ruleset(
    desired: RuleSet, live: Mapping[str, SavedTable]
) -> list[TablePlan]:
    """One :func:`plan_table` per desired table, in table order."""
    return [
        plan_table(t, live.get(t.name), desired.prefix)
        for t in ordered(desired.tables)
    ]
