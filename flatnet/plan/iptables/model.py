"""The value model: what we want (RuleSet) and what is live (SavedTable).

PURE. A :class:`RuleSet` is the whole desired state of one binary (wrap
prefix) in some tables: ``Table.chains`` are chains we own entirely
(``<prefix>-*``); ``Table.shared_chains`` (``nova-filter-top``,
``nova-postrouting-bottom``) are created if missing but never flushed,
since other binaries add their jumps there (as in nova);
``Table.anchors`` are our exact rules in chains we do not own (builtins,
shared chains). Every value is validated on construction.
:func:`parse_save` reads ``iptables-save`` output into
:class:`SavedTable` values.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Literal

from flatnet import exception
from flatnet.plan.iptables.grammar import canonical_rule, parse_rule
from flatnet.plan.iptables.names import validate_chain_name

TABLE_ORDER = ("filter", "nat", "mangle")
BUILTIN_CHAINS: Mapping[str, tuple[str, ...]] = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
}
_COUNTERS_RE = re.compile(r"^\[\d+:\d+\] ")
Position = Literal["top", "bottom"]


@dataclasses.dataclass(frozen=True, slots=True)
class Chain:
    """A chain we own entirely, with its rules in order."""

    name: str
    rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_chain_name(self.name)
        for rule in self.rules:
            parse_rule(rule)

    def canonical(self) -> tuple[str, ...]:
        """The rules as iptables-save prints them."""
        return tuple(map(canonical_rule, self.rules))


@dataclasses.dataclass(frozen=True, slots=True)
class Anchor:
    """Our exact rule in a chain we do not own (a builtin or shared)."""

    chain: str
    rule: str
    position: Position = "top"

    def __post_init__(self) -> None:
        validate_chain_name(self.chain)
        parse_rule(self.rule)


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """Our part of one iptables table."""

    name: str
    chains: tuple[Chain, ...] = ()
    shared_chains: tuple[str, ...] = ()
    anchors: tuple[Anchor, ...] = ()

    def chain(self, name: str) -> Chain:
        """The owned chain ``name``; raises KeyError if absent."""
        for chain in self.chains:
            if chain.name == name:
                return chain
        raise KeyError(name)

    def chain_map(self) -> dict[str, Chain]:
        """Owned chains by name (for many lookups)."""
        return {chain.name: chain for chain in self.chains}


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """The whole desired state of one wrap prefix."""

    prefix: str
    tables: Mapping[str, Table]

    def lines(self) -> list[str]:
        """Every rule as ``-A chain rule`` (nova's text), table-ordered."""
        out: list[str] = []
        for table in ordered(self.tables):
            out.append(f"*{table.name}")
            out += [f"-A {a.chain} {a.rule}" for a in table.anchors]
            for chain in table.chains:
                out += [f"-A {chain.name} {r}" for r in chain.rules]
        return out


def ordered(tables: Mapping[str, Table]) -> list[Table]:
    """``tables`` in TABLE_ORDER (filter, nat, mangle, then others)."""
    rank = {name: n for n, name in enumerate(TABLE_ORDER)}
    return [tables[k] for k in sorted(tables, key=lambda k: rank.get(k, 9))]


@dataclasses.dataclass(frozen=True)
class SavedTable:
    """One table as read from ``iptables-save``: chains -> rule specs."""

    name: str
    chains: Mapping[str, tuple[str, ...]]


def empty_table(name: str) -> SavedTable:
    """A table that does not exist yet: its builtin chains, no rules."""
    return SavedTable(name, {c: () for c in BUILTIN_CHAINS.get(name, ())})


def _bad(line: str) -> exception.InvalidIptablesRule:
    return exception.InvalidIptablesRule(
        rule=line, reason="outside a *table block"
    )


def parse_save(text: str) -> dict[str, SavedTable]:
    """Parse ``iptables-save`` output (with or without ``-c`` counters).

    Raises InvalidIptablesRule on a line outside a table.
    """
    tables: dict[str, dict[str, list[str]]] = {}
    chains: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("-A ") and chains is not None:  # the hot path
            _, chain, *rest = line.split(" ", 2)
            chains.setdefault(chain, []).append(rest[0] if rest else "")
            continue
        if line.startswith("["):  # -c counters: "[pkts:bytes] -A ..."
            line = _COUNTERS_RE.sub("", line)
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            chains = tables.setdefault(line[1:], {})
        elif chains is None:
            raise _bad(line)
        elif line.startswith(":"):
            chains.setdefault(line[1:].split(" ")[0], [])
        elif line.startswith("-A "):
            _, chain, *rest = line.split(" ", 2)
            chains.setdefault(chain, []).append(rest[0] if rest else "")
    return {
        name: SavedTable(name, {c: tuple(r) for c, r in t.items()})
        for name, t in tables.items()
    }
