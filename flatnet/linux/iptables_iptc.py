"""IptablesBackend on python-iptables (libiptc): legacy x_tables only.

NOTE: python-iptables "can only work with iptables-legacy rules"
(ldx/python-iptables#319); on an nf_tables host its rules land in legacy
tables that ``iptables -S`` does not list (#342, #320), which is why
:func:`flatnet.linux.iptables.select_backend` only picks it on legacy
hosts. Planning is shared with the restore backend
(:class:`~flatnet.plan.iptables.AppliedState`): a table is read through
libiptc (slow: every rule is translated in Python) only when nothing is
cached, on verify/refresh, or after a failed delta. Per changed table:
one libiptc handle with autocommit off, the plan's operations, one
commit. A failure before the commit discards the handle, so the table is
unchanged. For a named netns the calling thread enters it (setns via
pyroute2) around the whole operation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import iptc
import netaddr
from pyroute2 import netns as pyroute2_netns

from flatnet import exception
from flatnet.plan.iptables import (
    TABLE_ORDER,
    AppliedState,
    Option,
    RuleSet,
    SavedTable,
    TablePlan,
    canonical_rule,
    parse_rule,
)

LOG = logging.getLogger(__name__)
_BASE_ATTRS = {
    "-s": "src",
    "-d": "dst",
    "-i": "in_interface",
    "-o": "out_interface",
    "-p": "protocol",
}


@contextlib.contextmanager
def _iptc_errors(table: str, what: str) -> Iterator[None]:
    """The one place where libiptc/xtables errors become
    FirewallApplyError, naming the table and the rule or step."""
    try:
        yield
    except (iptc.IPTCError, iptc.XTablesError, ValueError) as exc:
        raise exception.FirewallApplyError(
            table=table, reason=f"{what}: {exc}"
        ) from exc


@contextlib.contextmanager
def _in_netns(name: str | None) -> Iterator[None]:
    if name is None:
        yield
        return
    with _iptc_errors("*", f"entering netns {name}"):
        try:
            pyroute2_netns.pushns(name)
        except OSError as exc:
            raise ValueError(str(exc)) from exc
    try:
        yield
    finally:
        pyroute2_netns.popns()


def build_rule(spec: str) -> Any:
    """An ``iptc.Rule`` for a rule spec (canonical spelling first)."""
    parsed = parse_rule(canonical_rule(spec))
    rule = iptc.Rule()
    for opt in parsed.base:
        neg = "!" if opt.negated else ""
        setattr(rule, _BASE_ATTRS[opt.name], f"{neg}{opt.value}")
    for name, opts in parsed.matches:
        match = rule.create_match(name)
        for opt in opts:
            setattr(match, opt.name[2:].replace("-", "_"), _iptc_value(opt))
    if parsed.target is not None:
        target = rule.create_target(parsed.target)
        for opt in parsed.target_options:
            setattr(target, opt.name[2:].replace("-", "_"), _iptc_value(opt))
    return rule


def _iptc_value(opt: Option) -> str | list[str]:
    """python-iptables' spelling of an option's value: "!v" or a list
    (``["!", "NAME", "src"]``) for several values (``--match-set``)."""
    neg = ["!"] if opt.negated else []
    values = opt.values()
    if len(values) > 1:
        return [*neg, *values]
    return "".join([*neg, *values])


def _address(value: str | None, flag: str) -> list[str]:
    if not value:
        return []
    neg, value = value.startswith("!"), value.lstrip("!")
    net = netaddr.IPNetwork(value)
    if net.prefixlen == 0 and not neg:
        return []
    return [*(["!"] if neg else []), flag, str(net.cidr)]


def _params(module: Any) -> list[str]:
    out: list[str] = []
    for key, values in module.get_all_parameters().items():
        neg = bool(values) and values[0] == "!"
        out += [
            *(["!"] if neg else []),
            f"--{key}",
            *(values[1:] if neg else values),
        ]
    return out


def rule_text(rule: Any) -> str:
    """iptables-save spelling of a libiptc rule (ours are canonical;
    foreign ones only need to be stable)."""
    tokens = _address(rule.src, "-s") + _address(rule.dst, "-d")
    for flag, value in (("-i", rule.in_interface), ("-o", rule.out_interface)):
        if value:
            neg = value.startswith("!")
            tokens += [*(["!"] if neg else []), flag, value.lstrip("!")]
    if rule.protocol and rule.protocol != "ip":
        tokens += ["-p", rule.protocol]
    for match in rule.matches:
        tokens += ["-m", match.name, *_params(match)]
    if rule.target is not None and rule.target.name:
        jump = "-g" if rule.target.goto else "-j"
        tokens += [jump, rule.target.name, *_params(rule.target)]
    text = " ".join(tokens)
    with contextlib.suppress(exception.InvalidIptablesRule):
        text = canonical_rule(text)
    return text


def _read_table(table: Any) -> SavedTable:
    return SavedTable(
        table.name,
        {
            chain.name: tuple(rule_text(r) for r in chain.rules)
            for chain in table.chains
        },
    )


class IptcBackend:
    """python-iptables executor (legacy x_tables), optionally in netns."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._state = AppliedState()

    def __repr__(self) -> str:
        return f"IptcBackend(netns={self.netns!r})"

    def read(self) -> dict[str, SavedTable]:
        """The live filter/nat/mangle tables, read through libiptc."""
        with _in_netns(self.netns):
            return {n: _read_table(_open(n)) for n in TABLE_ORDER}

    def read_table(self, name: str) -> SavedTable:
        """The live table ``name``, read through libiptc."""
        with _in_netns(self.netns):
            return _read_table(_open(name))

    def apply(self, ruleset: RuleSet, verify: bool = False) -> list[TablePlan]:
        """See IptablesBackend.apply: one libiptc commit per table that
        changed; no libiptc call at all when nothing did."""
        with _in_netns(self.netns):
            return self._state.apply(ruleset, _Session(), verify)

    def refresh(self) -> None:
        """See IptablesBackend.refresh."""
        self._state.forget()


def _open(name: str) -> Any:
    """A fresh libiptc handle on table ``name`` (autocommit off) in the
    namespace the calling thread is in now."""
    with _iptc_errors(name, "opening the table"):
        table = iptc.Table(name, autocommit=False)
        # NOTE: iptc caches Table objects per name, not per namespace;
        # refresh() drops the old handle and opens a new one here.
        table.refresh()
    return table


class _Session:
    """TableIO for one apply: a table read is committed through the
    same handle; after a commit or failure the handle is dropped."""

    def __init__(self) -> None:
        self._handles: dict[str, Any] = {}

    def read_table(self, name: str) -> SavedTable:
        self._handles[name] = _open(name)
        return _read_table(self._handles[name])

    def commit(self, plan: TablePlan) -> None:
        """NOTE: libiptc's commit replaces the whole table blob in the
        kernel (as iptables-legacy-restore does), so even a one-rule
        delta costs O(table size) there; the delta saves reading and
        translating every rule in Python."""
        table = self._handles.pop(plan.table, None)
        if table is None:
            table = _open(plan.table)
        _execute(table, plan)
        with _iptc_errors(plan.table, "commit"):
            table.commit()


def _execute(table: Any, plan: TablePlan) -> None:
    name = plan.table
    for chain_name in (
        *plan.create_chains,
        *(c.name for c in plan.rewrite),
        *plan.delete_chains,
    ):
        # Same as ":chain - [0:0]" under --noflush: create or flush.
        with _iptc_errors(name, f"chain {chain_name}"):
            if table.is_chain(chain_name):
                table.flush_entries(chain_name)
            else:
                table.create_chain(chain_name)
    for chain in plan.rewrite:
        for spec in chain.rules:
            _add(table, "-A", chain.name, spec, None)
    for op in (*plan.edits, *plan.anchor_ops):
        _add(table, op.op, op.chain, op.rule, op.position)
    for chain_name in plan.delete_chains:
        with _iptc_errors(name, f"deleting chain {chain_name}"):
            table.delete_chain(chain_name)


def _add(
    table: Any, op: str, chain: str, spec: str, position: int | None
) -> None:
    with _iptc_errors(table.name, f"{op} {chain} {spec}"):
        rule = build_rule(spec)
        target = rule.target.name if rule.target is not None else ""
        if target and not target.isupper() and not table.is_chain(target):
            raise ValueError(f"no chain/target named {target}")
        handle = iptc.Chain(table, chain)
        if op == "-D":
            handle.delete_rule(rule)
        elif op == "-I":
            handle.insert_rule(rule, (position or 1) - 1)
        else:
            handle.append_rule(rule)
