"""Rule text: the token check, the grammar, the iptables-save spelling.

PURE. Everything that reaches iptables-restore's line-based input is
checked here first: :func:`parse_rule` accepts only tokens of
``[A-Za-z0-9_.:/,!+=@-]``, so no whitespace, quote, ``#``, ``;`` or
``$`` gets through, and a dangling or misplaced option is an error.
:func:`canonical_rule` gives the spelling ``iptables-save`` prints, so
wanted and live rules compare as strings.

Beyond nova-network's rules, the grammar covers what nova's
IptablesFirewallDriver (nova-compute) wrote and what set-based security
groups need: options with several values (``-m set --match-set NAME
src``, ``--tcp-flags MASK COMP``) and protocol options without ``-m``
(``-p udp --sport 67 --dport 68``, ``-j ACCEPT -p tcp --dport 80``),
for which iptables(8) loads the protocol's match implicitly and
iptables-save prints ``-m udp``.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import netaddr

from flatnet import exception

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
#: Options of the protocol matches (iptables-extensions(8) tcp, udp,
#: icmp), which iptables accepts after ``-p`` without ``-m``.
_PROTO_OPTIONS = frozenset({
    "--sport", "--source-port", "--dport", "--destination-port",
    "--tcp-flags", "--syn", "--tcp-option", "--icmp-type",
})  # fmt: skip
_PROTO_MATCHES = frozenset({"tcp", "udp", "udplite", "sctp", "dccp", "icmp"})
_OPTION_ALIAS = {"--source-port": "--sport", "--destination-port": "--dport"}
#: iptables-save prints ``--syn`` as the flags it stands for.
_SYN_FLAGS = "FIN,SYN,RST,ACK SYN"


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    """One ``[!] --name [value ...]`` of a rule (values space-joined)."""

    name: str
    value: str | None
    negated: bool = False

    def values(self) -> list[str]:
        """The option's values as separate tokens."""
        return [] if self.value is None else self.value.split(" ")

    def tokens(self) -> list[str]:
        neg = ["!"] if self.negated else []
        return [*neg, self.name, *self.values()]


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


class _Parser:
    """One pass over the tokens of one rule spec."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.tokens = _tokens(spec)
        self.pos = 0
        self.base: list[Option] = []
        self.matches: list[tuple[str, list[Option]]] = []
        self.target: str | None = None
        self.target_opts: list[Option] = []
        self.section: list[Option] | None = None
        self.section_match: str | None = None
        self.proto: str | None = None

    def parse(self) -> ParsedRule:
        neg = False
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            self.pos += 1
            if tok == "!" and not neg:
                neg = True
                continue
            self._token(tok, neg)
            neg = False
        if neg:
            raise _bad(self.spec, "dangling '!'")
        return ParsedRule(
            tuple(self.base),
            tuple((n, tuple(o)) for n, o in self.matches),
            self.target,
            tuple(self.target_opts),
        )

    def _value(self, tok: str) -> str:
        if self.pos >= len(self.tokens):
            raise _bad(self.spec, f"{tok} needs a value")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _token(self, tok: str, neg: bool) -> None:
        if tok in _BASE_OPTS:
            opt = Option(_BASE_OPTS[tok], self._value(tok), neg)
            if opt.name == "-p" and not neg:
                self.proto = (opt.value or "").lower()
            self.base.append(opt)
        elif tok in ("-m", "--match") and not neg:
            self.section_match = self._value(tok)
            self.matches.append((self.section_match, []))
            self.section = self.matches[-1][1]
        elif tok in ("-j", "--jump") and not neg:
            self.target = self._value(tok)
            self.section, self.section_match = self.target_opts, None
        elif tok.startswith("--"):
            self._option(tok, neg)
        else:
            raise _bad(self.spec, f"unexpected {tok!r}")

    def _option(self, tok: str, neg: bool) -> None:
        values: list[str] = []
        while self.pos < len(self.tokens):
            nxt = self.tokens[self.pos]
            if nxt.startswith("-") or nxt == "!":
                break
            values.append(nxt)
            self.pos += 1
        option = Option(tok, " ".join(values) if values else None, neg)
        self._section_for(tok).append(option)

    def _section_for(self, tok: str) -> list[Option]:
        """Where option ``tok`` belongs: the current ``-m``/``-j``, or
        (for --dport & co. outside a protocol match) the protocol's
        match, loaded implicitly as iptables does."""
        if tok in _PROTO_OPTIONS and self.section_match not in _PROTO_MATCHES:
            if self.proto not in _PROTO_MATCHES:
                raise _bad(self.spec, f"{tok} needs -p tcp, udp or icmp")
            for name, opts in self.matches:
                if name == self.proto:
                    return opts
            self.matches.append((self.proto, []))
            return self.matches[-1][1]
        if self.section is None:
            raise _bad(self.spec, f"{tok} before any -m or -j")
        return self.section


@functools.lru_cache(maxsize=131072)
def parse_rule(spec: str) -> ParsedRule:
    """Split a rule spec (``-s X -j Y``) into its parts (memoised: the
    result is immutable and the same spec recurs on every sync).

    Raises InvalidIptablesRule for characters outside the safe set,
    dangling options, or an option before any ``-m``/``-j``.
    """
    return _Parser(spec).parse()


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
    if opt.name == "--syn":
        return Option("--tcp-flags", _SYN_FLAGS, opt.negated)
    if opt.name in _OPTION_ALIAS:
        return Option(_OPTION_ALIAS[opt.name], opt.value, opt.negated)
    return opt


@functools.lru_cache(maxsize=131072)
def canonical_rule(spec: str) -> str:
    """The rule as ``iptables-save`` prints it (v1.8, legacy and nft).

    Base options go first in save order (-s -d -i -o -p), 0.0.0.0/0 is
    dropped, hosts get /32, implicit protocol matches are named
    (``-p udp -m udp --dport 68``), ``--to`` is spelled out for
    SNAT/DNAT, ``--syn`` as its flags, and conntrack states are sorted
    in the kernel's bit order.
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
