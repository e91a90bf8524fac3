"""iptables rules as data: model, ownership, rendering, parsing, diffing.

PURE: no I/O, no CONF. A :class:`RuleSet` is the whole desired state of
one binary (wrap prefix) in the filter, nat and mangle tables:

* ``Table.chains`` are chains we own entirely (``<prefix>-*``); applying
  rewrites a chain only if its rules differ from the live ones;
* ``Table.shared_chains`` (``nova-filter-top``, ``nova-postrouting-bottom``)
  are created if missing but never flushed: other binaries (nova-compute)
  add their own jumps to them, as in nova;
* ``Table.anchors`` are our exact jump rules in chains we do not own
  (builtins, shared chains); they are inserted only if missing.

Ownership is exact (chain name prefix, exact jump rule), never by
substring (nova bug §9.2), so foreign rules keep their content and order.
Live rules are compared in iptables-save's canonical spelling, which
:func:`canonical_rule` derives from nova's rule text.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import netaddr

from flatnet import exception

# NOTE: XT_EXTENSION_MAXNAMELEN is 29 including the NUL (neutron's 28).
MAX_CHAIN_NAME = 28
# nova truncated the binary name to 16; the longest suffix is 12
# ("-POSTROUTING"), so 16 + 12 = 28.
MAX_WRAP_PREFIX = 16
FILTER_TOP = "nova-filter-top"
POSTROUTING_BOTTOM = "nova-postrouting-bottom"
SHARED_CHAINS = frozenset({FILTER_TOP, POSTROUTING_BOTTOM})
TABLE_ORDER = ("filter", "nat", "mangle")
BUILTIN_CHAINS: Mapping[str, tuple[str, ...]] = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
}
_CHAIN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# One token of a rule: no whitespace, quotes, '#', ';', '$' or control
# characters can ever reach iptables-restore's line-based input.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:/,!+=@-]+$")
_BASE_OPTS = {
    "-s": "-s", "--source": "-s", "-d": "-d", "--destination": "-d",
    "-i": "-i", "--in-interface": "-i", "-o": "-o",
    "--out-interface": "-o", "-p": "-p", "--protocol": "-p",
}  # fmt: skip
_BASE_ORDER = ("-s", "-d", "-i", "-o", "-p")
_STATE_ORDER = (
    "INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT",
)  # fmt: skip
_TO_ALIAS = {"SNAT": "--to-source", "DNAT": "--to-destination"}
_COUNTERS_RE = re.compile(r"^\[\d+:\d+\] ")

Position = Literal["top", "bottom"]


def validate_chain_name(name: str) -> str:
    """Return ``name`` if it is a valid chain name.

    Raises InvalidIptablesRule if it is longer than MAX_CHAIN_NAME or
    contains anything but ``[A-Za-z0-9_.-]``.
    """
    if len(name) > MAX_CHAIN_NAME or not _CHAIN_RE.match(name):
        raise exception.InvalidIptablesRule(
            rule=name,
            reason=f"chain names are 1-{MAX_CHAIN_NAME} chars "
            "of [A-Za-z0-9_.-]",
        )
    return name


def validate_prefix(prefix: str) -> str:
    """Return the wrap prefix if valid (<= MAX_WRAP_PREFIX chars)."""
    if len(prefix) > MAX_WRAP_PREFIX or not _PREFIX_RE.match(prefix):
        raise exception.InvalidIptablesRule(
            rule=prefix,
            reason=f"wrap prefix must be 1-{MAX_WRAP_PREFIX} "
            "chars of [A-Za-z0-9_.-]",
        )
    if any(shared.startswith(f"{prefix}-") for shared in SHARED_CHAINS):
        raise exception.InvalidIptablesRule(
            rule=prefix, reason="wrap prefix collides with a shared chain"
        )
    return prefix


def wrap(prefix: str, name: str) -> str:
    """``<prefix>-<name>``, validated (nova's ``$name``)."""
    return validate_chain_name(f"{prefix}-{name}")


def is_owned_chain(name: str, prefix: str) -> bool:
    """True if chain ``name`` belongs to ``prefix`` (exact prefix match)."""
    return name.startswith(f"{prefix}-") and name not in SHARED_CHAINS


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    """One ``[!] --name [value]`` of a rule."""

    name: str
    value: str | None
    negated: bool = False

    def tokens(self) -> list[str]:
        neg = ["!"] if self.negated else []
        return neg + [self.name] + ([] if self.value is None else [self.value])


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedRule:
    """A rule split into base options, matches and target."""

    base: tuple[Option, ...]
    matches: tuple[tuple[str, tuple[Option, ...]], ...]
    target: str | None
    target_options: tuple[Option, ...]


def _bad(spec: str, reason: str) -> exception.InvalidIptablesRule:
    return exception.InvalidIptablesRule(rule=spec, reason=reason)


def _tokens(spec: str) -> list[str]:
    tokens = spec.split(" ")
    for tok in tokens:
        if not _TOKEN_RE.match(tok):
            raise _bad(spec, f"bad token {tok!r}")
    return tokens


def parse_rule(spec: str) -> ParsedRule:  # noqa: C901 - one small grammar
    """Split a rule spec (``-s X -j Y``) into its parts.

    Raises InvalidIptablesRule for characters outside the safe set,
    dangling options, or an option before any ``-m``/``-j``.
    """
    tokens = _tokens(spec)
    base: list[Option] = []
    matches: list[tuple[str, list[Option]]] = []
    target: str | None = None
    target_opts: list[Option] = []
    section: list[Option] | None = None
    neg, i = False, 0
    while i < len(tokens):
        tok, nxt = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else None
        i += 1
        if tok == "!":
            neg = True
            continue
        if tok in _BASE_OPTS or tok in ("-m", "--match", "-j", "--jump"):
            if nxt is None:
                raise _bad(spec, f"{tok} needs a value")
            i += 1
            if tok in _BASE_OPTS:
                base.append(Option(_BASE_OPTS[tok], nxt, neg))
            elif tok in ("-m", "--match"):
                matches.append((nxt, []))
                section = matches[-1][1]
            else:
                target, section = nxt, target_opts
        elif tok.startswith("--") and section is not None:
            value = None
            if nxt is not None and not nxt.startswith("-") and nxt != "!":
                value, i = nxt, i + 1
            section.append(Option(tok, value, neg))
        else:
            raise _bad(spec, f"unexpected {tok!r}")
        neg = False
    return ParsedRule(
        tuple(base),
        tuple((n, tuple(o)) for n, o in matches),
        target,
        tuple(target_opts),
    )


def _canonical_base(opt: Option) -> list[str]:
    value = opt.value or ""
    if opt.name in ("-s", "-d"):
        try:
            net = netaddr.IPNetwork(value)
        except (netaddr.AddrFormatError, ValueError) as exc:
            raise _bad(value, "not an address or CIDR") from exc
        if net.prefixlen == 0 and not opt.negated:
            return []
        value = str(net.cidr)
    elif opt.name == "-p":
        value = value.lower()
    return Option(opt.name, value, opt.negated).tokens()


def _canonical_option(opt: Option, target: str | None) -> Option:
    if opt.name in ("--state", "--ctstate") and opt.value:
        states = opt.value.split(",")
        order = {s: n for n, s in enumerate(_STATE_ORDER)}
        states.sort(key=lambda s: order.get(s, len(order)))
        return Option(opt.name, ",".join(states), opt.negated)
    if opt.name == "--to" and target in _TO_ALIAS:
        return Option(_TO_ALIAS[target], opt.value, opt.negated)
    return opt


@functools.lru_cache(maxsize=65536)
def canonical_rule(spec: str) -> str:
    """The rule as ``iptables-save`` prints it (v1.8, legacy and nft).

    Base options go first in save order (-s -d -i -o -p), 0.0.0.0/0 is
    dropped, hosts get /32, ``--to`` is spelled out for SNAT/DNAT and
    conntrack states are sorted in the kernel's bit order.
    """
    rule = parse_rule(spec)
    out: list[str] = []
    for name in _BASE_ORDER:
        for opt in rule.base:
            if opt.name == name:
                out += _canonical_base(opt)
    for match, opts in rule.matches:
        out += ["-m", match]
        for opt in opts:
            out += _canonical_option(opt, None).tokens()
    if rule.target is not None:
        out += ["-j", rule.target]
        for opt in rule.target_options:
            out += _canonical_option(opt, rule.target).tokens()
    return " ".join(out)


@dataclasses.dataclass(frozen=True, slots=True)
class Chain:
    """A chain we own entirely, with its rules in order."""

    name: str
    rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_chain_name(self.name)
        for rule in self.rules:
            parse_rule(rule)


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


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """The whole desired state of one wrap prefix."""

    prefix: str
    tables: Mapping[str, Table]

    def lines(self) -> list[str]:
        """Every rule as ``-A chain rule`` (nova's text), table-ordered."""
        out: list[str] = []
        for table in _ordered(self.tables):
            out.append(f"*{table.name}")
            out += [f"-A {a.chain} {a.rule}" for a in table.anchors]
            for chain in table.chains:
                out += [f"-A {chain.name} {r}" for r in chain.rules]
        return out


def _ordered(tables: Mapping[str, Table]) -> list[Table]:
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


def parse_save(text: str) -> dict[str, SavedTable]:
    """Parse ``iptables-save`` output (with or without ``-c`` counters).

    Raises InvalidIptablesRule on a line outside a table.
    """
    tables: dict[str, dict[str, list[str]]] = {}
    chains: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("-A "):
            if chains is None:
                raise _bad(line, "outside a *table block")
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
            raise _bad(line, "outside a *table block")
        elif line.startswith(":"):
            chains.setdefault(line[1:].split(" ")[0], [])
        elif line.startswith("-A "):
            _, chain, *rest = line.split(" ", 2)
            chains.setdefault(chain, []).append(rest[0] if rest else "")
    return {
        name: SavedTable(name, {c: tuple(r) for c, r in t.items()})
        for name, t in tables.items()
    }


@dataclasses.dataclass(frozen=True, slots=True)
class AnchorOp:
    """One change in a chain we do not own."""

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


def plan_table(
    desired: Table, live: SavedTable | None, prefix: str
) -> TablePlan:
    """The changes that turn ``live`` into ``desired`` for our part only.

    Owned chains whose canonical rules already match are left alone;
    chains of ``prefix`` that are no longer wanted are deleted.
    """
    live = live or empty_table(desired.name)
    owned = {c.name for c in desired.chains}
    rewrite: list[Chain] = []
    edits: list[AnchorOp] = []
    for chain in desired.chains:
        have = live.chains.get(chain.name)
        want = tuple(canonical_rule(r) for r in chain.rules)
        if have == want:
            continue
        edit = None if have is None else _chain_edit(chain, have, want)
        if edit is None:
            rewrite.append(chain)
        else:
            edits += edit
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


def _chain_edit(
    chain: Chain, have: Sequence[str], want: Sequence[str]
) -> list[AnchorOp] | None:
    """In-place ops for a small change between a common head and tail
    (e.g. one floating IP more), or None when a rewrite is simpler or a
    deleted rule is not unique (``-D`` by spec removes the first one)."""
    head = 0
    while head < min(len(have), len(want)) and have[head] == want[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(have), len(want)) - head
        and have[-1 - tail] == want[-1 - tail]
    ):
        tail += 1
    gone = have[head : len(have) - tail]
    new = chain.rules[head : len(want) - tail]
    if len(gone) + len(new) > max(8, len(want) // 8):
        return None
    counts = collections.Counter(have)
    if any(counts[rule] != 1 for rule in gone):
        return None
    ops = [AnchorOp("-D", chain.name, rule) for rule in gone]
    return ops + [
        AnchorOp("-I", chain.name, rule, head + 1 + n)
        for n, rule in enumerate(new)
    ]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def plan_ruleset(
    desired: RuleSet, live: Mapping[str, SavedTable]
) -> list[TablePlan]:
    """One :func:`plan_table` per desired table, in table order."""
    return [
        plan_table(t, live.get(t.name), desired.prefix)
        for t in _ordered(desired.tables)
    ]


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
        for name in plan.create_chains:
            out += [f"@@ {plan.table} @@", f"+:{name}"]
        for name in plan.changed_chains():
            chain = desired.tables[plan.table].chain(name)
            if chain.name not in table.chains:
                out += [f"@@ {plan.table} @@", f"+:{chain.name}"]
            have = [
                f"-A {chain.name} {r}"
                for r in table.chains.get(chain.name, ())
            ]
            want = [
                f"-A {chain.name} {canonical_rule(r)}" for r in chain.rules
            ]
            out += _unified(have, want, f"{plan.table}/{chain.name}")
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
    return list(
        difflib.unified_diff(
            have,
            want,
            fromfile=f"live {label}",
            tofile=f"wanted {label}",
            lineterm="",
            n=1,
        )
    )


class RuleSetBuilder:
    """nova's IptablesManager structure, as a pure builder.

    The skeleton (wrapped builtins, ``local``, ``snat``, ``float-snat``,
    the shared top/bottom chains and the jumps into them) exists from the
    start; :meth:`add` appends to a wrapped chain by its short name and
    expands ``$name`` tokens to ``<prefix>-name``.
    """

    _WRAPPED: Mapping[str, tuple[str, ...]] = {
        "filter": ("INPUT", "OUTPUT", "FORWARD", "local"),
        "nat": ("PREROUTING", "OUTPUT", "POSTROUTING", "snat", "float-snat"),
        "mangle": ("POSTROUTING",),
    }

    def __init__(self, prefix: str) -> None:
        self.prefix = validate_prefix(prefix)
        self._rules: dict[str, dict[str, list[str]]] = {
            table: {wrap(prefix, c): [] for c in chains}
            for table, chains in self._WRAPPED.items()
        }
        self.add("nat", "snat", "-j $float-snat")

    def add(self, table: str, chain: str, rule: str) -> None:
        """Append ``rule`` to ``<prefix>-<chain>``; exact duplicates are
        skipped (nova). Raises InvalidIptablesRule for an unknown chain
        or an invalid rule."""
        name = wrap(self.prefix, chain)
        rules = self._rules.get(table, {}).get(name)
        if rules is None:
            raise _bad(rule, f"unknown chain {table}/{name}")
        rule = re.sub(
            r"\$([A-Za-z0-9_.-]+)",
            lambda m: wrap(self.prefix, m.group(1)),
            rule,
        )
        parse_rule(rule)
        if rule not in rules:
            rules.append(rule)

    def _anchors(self, table: str) -> tuple[Anchor, ...]:
        p = self.prefix
        jumps = [
            Anchor(c, f"-j {p}-{c}")
            for c in self._WRAPPED[table]
            if c.isupper()
        ]
        if table == "filter":
            jumps = [
                Anchor("FORWARD", f"-j {FILTER_TOP}"),
                Anchor("OUTPUT", f"-j {FILTER_TOP}"),
                Anchor(FILTER_TOP, f"-j {p}-local"),
                *jumps,
            ]
        elif table == "nat":
            jumps += [
                Anchor("POSTROUTING", f"-j {POSTROUTING_BOTTOM}", "bottom"),
                Anchor(POSTROUTING_BOTTOM, f"-j {p}-snat"),
            ]
        return tuple(jumps)

    def build(self) -> RuleSet:
        """The RuleSet; chains sorted by name for determinism."""
        shared = {"filter": (FILTER_TOP,), "nat": (POSTROUTING_BOTTOM,)}
        tables = {
            name: Table(
                name,
                tuple(Chain(c, tuple(r)) for c, r in sorted(chains.items())),
                shared.get(name, ()),
                self._anchors(name),
            )
            for name, chains in self._rules.items()
        }
        return RuleSet(self.prefix, tables)
