"""A readable report of live vs wanted rules (verify / repair).

PURE. :func:`diff_ruleset` renders the same plans that apply would
commit (:func:`~flatnet.plan.iptables.delta.plan_ruleset`) as a
unified-diff-like text, so what ``verify`` shows is what ``repair``
fixes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from flatnet.plan.iptables.delta import plan_ruleset
from flatnet.plan.iptables.grammar import canonical_rule
from flatnet.plan.iptables.model import RuleSet, SavedTable, empty_table


def diff_ruleset(
    desired: RuleSet, live: Mapping[str, SavedTable]
) -> list[str]:
    """A readable unified-diff-like report of live vs wanted rules.

    Empty when everything of ours is in place. Lines starting with ``-``
    are live but unwanted, ``+`` wanted but missing.
    """
    out: list[str] = []
    for plan in plan_ruleset(desired, live):
        table = live.get(plan.table) or empty_table(plan.table)
        wanted = desired.tables[plan.table].chain_map()
        for name in plan.create_chains:
            out += [f"@@ {plan.table} @@", f"+:{name}"]
        for name in plan.changed_chains():
            if name not in table.chains:
                out += [f"@@ {plan.table} @@", f"+:{name}"]
            have = [f"-A {name} {r}" for r in table.chains.get(name, ())]
            want = [f"-A {name} {r}" for r in wanted[name].canonical()]
            out += _unified(have, want, f"{plan.table}/{name}")
        for name in plan.delete_chains:
            have = [f"-A {name} {r}" for r in table.chains[name]]
            out += _unified([f":{name}", *have], [], f"{plan.table}/{name}")
        for op in plan.anchor_ops:
            sign = "-" if op.op == "-D" else "+"
            out.append(
                f"{sign}[{plan.table}] -A {op.chain} {canonical_rule(op.rule)}"
            )
    return out


def _unified(have: list[str], want: list[str], label: str) -> list[str]:
    old, new = f"live {label}", f"wanted {label}"
    return list(difflib.unified_diff(have, want, old, new, lineterm="", n=1))
