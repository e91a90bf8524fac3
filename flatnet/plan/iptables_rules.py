"""iptables rules: names, grammar, canonical spelling, the value model.

PURE: no I/O, no CONF. A :class:`RuleSet` is the whole desired state of
one binary (wrap prefix) in the filter, nat and mangle tables:
``Table.chains`` are chains we own entirely (``<prefix>-*``);
``Table.shared_chains`` (``nova-filter-top``, ``nova-postrouting-bottom``)
are created if missing but never flushed, since other binaries add their
jumps there (as in nova); ``Table.anchors`` are our exact jump rules in
chains we do not own (builtins, shared chains).

Everything that reaches iptables-restore's line-based input is checked
here first: chain names and the wrap prefix
(:func:`validate_chain_name`, :func:`validate_prefix`), rule tokens
(:func:`parse_rule` accepts only ``[A-Za-z0-9_.:/,!+=@-]`` tokens, so no
whitespace, quote, ``#``, ``;`` or ``$`` gets through). Ownership is by
exact chain-name prefix (:func:`is_owned_chain`), never by substring
(nova bug §9.2). :func:`canonical_rule` gives the spelling
``iptables-save`` prints, so wanted and live rules compare as strings;
:func:`parse_save` reads ``iptables-save`` output.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
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


@functools.lru_cache(maxsize=4096)
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


@functools.lru_cache(maxsize=131072)
def parse_rule(spec: str) -> ParsedRule:  # noqa: C901 - one small grammar
    """Split a rule spec (``-s X -j Y``) into its parts (memoised: the
    result is immutable and the same spec recurs on every sync).

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


@functools.lru_cache(maxsize=131072)
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


Position = Literal["top", "bottom"]
_DOLLAR_RE = re.compile(r"\$([A-Za-z0-9_.-]+)")


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
