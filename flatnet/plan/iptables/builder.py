"""Building a RuleSet: a skeleton (the fixed frame) plus rules.

PURE. A :class:`Skeleton` says which chains of ours exist from the start
in which table, which shared chains must exist, and our jumps in chains
we do not own; ``$name`` in a rule stands for ``<prefix>-name`` (nova's
``IptablesManager`` wrapping). :data:`NOVA_SKELETON` is the frame nova's
``IptablesManager.__init__`` built for every binary (nova-network and
nova-compute alike); a user extends it (``NOVA_SKELETON.extended(...)``)
or writes its own. :class:`RuleSetBuilder` starts from a skeleton,
creates further chains (:meth:`~RuleSetBuilder.add_chain`, e.g. one per
instance) and appends rules; :meth:`~RuleSetBuilder.build` returns the
:class:`~flatnet.plan.iptables.model.RuleSet`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from flatnet import exception
from flatnet.plan.iptables.grammar import parse_rule
from flatnet.plan.iptables.model import (
    BUILTIN_CHAINS,
    Anchor,
    Chain,
    Position,
    RuleSet,
    Table,
)
from flatnet.plan.iptables.names import (
    FILTER_TOP,
    POSTROUTING_BOTTOM,
    validate_chain_name,
    validate_prefix,
    wrap,
)

_DOLLAR_RE = re.compile(r"\$([A-Za-z0-9_.-]+)")


def _bad(what: str, reason: str) -> exception.InvalidIptablesRule:
    return exception.InvalidIptablesRule(rule=what, reason=reason)


@dataclasses.dataclass(frozen=True, slots=True)
class SkeletonAnchor:
    """Our rule in a builtin or shared ``chain`` of ``table``."""

    table: str
    chain: str
    rule: str  # may name our chains as $short
    position: Position = "top"


@dataclasses.dataclass(frozen=True, slots=True)
class SkeletonRule:
    """A rule every RuleSet of the skeleton starts with."""

    table: str
    chain: str  # short name of one of our chains
    rule: str  # may name our chains as $short


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """The fixed frame of a RuleSet; validated on construction.

    ``chains``: table -> short names of our chains (a builtin's name,
    e.g. ``INPUT``, gives ``<prefix>-INPUT``); ``shared``: table ->
    shared chains (created if missing, never flushed); ``anchors`` in
    order per table (missing ones are inserted after the previous one);
    ``rules``: appended first, in order. Raises InvalidIptablesRule.
    """

    chains: Mapping[str, tuple[str, ...]]
    anchors: tuple[SkeletonAnchor, ...] = ()
    shared: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=dict
    )
    rules: tuple[SkeletonRule, ...] = ()

    def __post_init__(self) -> None:
        for table, names in (*self.chains.items(), *self.shared.items()):
            if table not in self.chains:
                raise _bad(table, "shared chains of a table without ours")
            for name in names:
                validate_chain_name(name)
        for anchor in self.anchors:
            foreign = (
                *BUILTIN_CHAINS.get(anchor.table, ()),
                *self.shared.get(anchor.table, ()),
            )
            if anchor.table not in self.chains or anchor.chain not in foreign:
                raise _bad(
                    anchor.chain,
                    f"an anchor's chain must be a builtin or shared chain "
                    f"of a table of ours, not {anchor.table}/{anchor.chain}",
                )
        for rule in self.rules:
            if rule.chain not in self.chains.get(rule.table, ()):
                raise _bad(rule.rule, f"no chain {rule.table}/{rule.chain}")

    def extended(
        self,
        chains: Mapping[str, Sequence[str]] | None = None,
        anchors: Sequence[SkeletonAnchor] = (),
        rules: Sequence[SkeletonRule] = (),
    ) -> Skeleton:
        """This skeleton plus more chains, anchors (after ours) and
        rules (after ours)."""
        merged = {t: list(names) for t, names in self.chains.items()}
        for table, names in (chains or {}).items():
            have = merged.setdefault(table, [])
            have += [n for n in names if n not in have]
        return Skeleton(
            {t: tuple(names) for t, names in merged.items()},
            (*self.anchors, *anchors),
            self.shared,
            (*self.rules, *rules),
        )


def wrapping_anchors(
    chains: Mapping[str, Sequence[str]],
) -> tuple[SkeletonAnchor, ...]:
    """``-j $NAME`` from each builtin chain to our chain of that name,
    in ``chains`` order (nova's wrapped builtins)."""
    return tuple(
        SkeletonAnchor(table, name, f"-j ${name}")
        for table, names in chains.items()
        for name in names
        if name in BUILTIN_CHAINS.get(table, ())
    )


def _nova_skeleton() -> Skeleton:
    """nova's IptablesManager frame (nova linux_net.IptablesManager)."""
    chains = {
        "filter": ("INPUT", "OUTPUT", "FORWARD", "local"),
        "nat": ("PREROUTING", "OUTPUT", "POSTROUTING", "snat", "float-snat"),
        "mangle": ("POSTROUTING",),
    }
    wrapping = wrapping_anchors(chains)
    return Skeleton(
        chains,
        (
            SkeletonAnchor("filter", "FORWARD", f"-j {FILTER_TOP}"),
            SkeletonAnchor("filter", "OUTPUT", f"-j {FILTER_TOP}"),
            SkeletonAnchor("filter", FILTER_TOP, "-j $local"),
            *wrapping,
            SkeletonAnchor(
                "nat", "POSTROUTING", f"-j {POSTROUTING_BOTTOM}", "bottom"
            ),
            SkeletonAnchor("nat", POSTROUTING_BOTTOM, "-j $snat"),
        ),
        {"filter": (FILTER_TOP,), "nat": (POSTROUTING_BOTTOM,)},
        (SkeletonRule("nat", "snat", "-j $float-snat"),),
    )


#: The frame of nova's IptablesManager (wrapped INPUT/OUTPUT/FORWARD and
#: local in filter; PREROUTING/OUTPUT/POSTROUTING, snat and float-snat in
#: nat; POSTROUTING in mangle; nova-filter-top and
#: nova-postrouting-bottom shared).
NOVA_SKELETON = _nova_skeleton()


class RuleSetBuilder:
    """A RuleSet under construction: the skeleton's chains and rules,
    then what :meth:`add_chain` and :meth:`add` put in."""

    def __init__(
        self, prefix: str, skeleton: Skeleton = NOVA_SKELETON
    ) -> None:
        self.prefix = validate_prefix(prefix)
        self.skeleton = skeleton
        # chain -> rules as an insertion-ordered set (O(1) duplicate test)
        self._rules: dict[str, dict[str, dict[str, None]]] = {
            table: {wrap(prefix, c): {} for c in chains}
            for table, chains in skeleton.chains.items()
        }
        #: (table, chain) named by a $name jump: must exist at build()
        self._jumps: set[tuple[str, str]] = set()
        for rule in skeleton.rules:
            self.add(rule.table, rule.chain, rule.rule)

    def add_chain(self, table: str, chain: str) -> str:
        """Create our chain ``<prefix>-<chain>`` (nova's ``add_chain``;
        an existing one is kept) and return its full name. Raises
        InvalidIptablesRule for a table outside the skeleton or a name
        over the length limit."""
        chains = self._rules.get(table)
        if chains is None:
            raise _bad(chain, f"table {table} is not in the skeleton")
        name = wrap(self.prefix, chain)
        chains.setdefault(name, {})
        return name

    def add(self, table: str, chain: str, rule: str) -> None:
        """Append ``rule`` to ``<prefix>-<chain>``; exact duplicates are
        skipped (nova). ``$name`` is ``<prefix>-name``, which must exist
        by :meth:`build`. Raises InvalidIptablesRule for an unknown
        chain or an invalid rule."""
        name = wrap(self.prefix, chain)
        rules = self._rules.get(table, {}).get(name)
        if rules is None:
            raise _bad(rule, f"unknown chain {table}/{name}")
        if "$" in rule:
            rule = self._expand(table, rule)
        parse_rule(rule)
        rules.setdefault(rule, None)

    def _expand(self, table: str, rule: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = wrap(self.prefix, match.group(1))
            self._jumps.add((table, name))
            return name

        return _DOLLAR_RE.sub(one, rule)

    def _anchors(self, table: str) -> tuple[Anchor, ...]:
        return tuple(
            Anchor(a.chain, self._expand(table, a.rule), a.position)
            for a in self.skeleton.anchors
            if a.table == table
        )

    def build(self) -> RuleSet:
        """The RuleSet; chains sorted by name for determinism. Raises
        InvalidIptablesRule for a ``$name`` jump to a missing chain."""
        tables = {
            name: Table(
                name,
                tuple(Chain(c, tuple(r)) for c, r in sorted(chains.items())),
                self.skeleton.shared.get(name, ()),
                self._anchors(name),
            )
            for name, chains in self._rules.items()
        }
        for table, chain in sorted(self._jumps):
            if chain not in self._rules[table]:
                raise _bad(chain, f"jump to missing chain {table}/{chain}")
        return RuleSet(self.prefix, tables)
