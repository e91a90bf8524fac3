"""flatnet-manage secgroup: the handlers (nova secgroup-create,
secgroup-list, secgroup-list-rules, secgroup-delete, secgroup-add-rule,
secgroup-delete-rule).

Every change is one transaction that bumps the ``firewall`` generation;
the hosts of the instances concerned apply it on their next poll.
"""

from __future__ import annotations

import argparse
from typing import Any

from flatnet import exception
from flatnet.cmd import cli, output
from flatnet.db import api as db_api
from flatnet.plan import firewall_model as fw

GROUP_HEADERS = ("name", "project", "description", "rules", "instances")
RULE_HEADERS = ("id", "protocol", "ports", "source")


def _int_text(value: str, what: str) -> str:
    try:
        int(value)
    except ValueError:
        raise exception.InvalidInput(
            reason=f"security group rule: {what} {value!r} is not an integer"
        ) from None
    return value


def _ports(args: argparse.Namespace) -> str | None:
    """--port-range, or --icmp-type/--icmp-code as nova's "type:code"."""
    icmp = args.icmp_type is not None or args.icmp_code is not None
    if not icmp:
        return args.port_range  # type: ignore[no-any-return]
    if args.port_range is not None:
        raise exception.InvalidInput(
            reason="security group rule: give --port-range or "
            "--icmp-type/--icmp-code, not both"
        )
    if str(args.protocol).lower() != "icmp":
        raise exception.InvalidInput(
            reason=f"security group rule: --icmp-type/--icmp-code need "
            f"--protocol icmp, not {args.protocol!r}"
        )
    kind = "-1" if args.icmp_type is None else args.icmp_type
    code = "-1" if args.icmp_code is None else args.icmp_code
    return f"{_int_text(kind, 'icmp type')}:{_int_text(code, 'icmp code')}"


def _spec(args: argparse.Namespace) -> db_api.RuleSpec:
    return db_api.RuleSpec(
        protocol=args.protocol,
        port_range=_ports(args),
        cidr=args.cidr,
        source_group=args.source_group,
    )


def port_text(rule: fw.SecurityGroupRule) -> str:
    """``80``, ``80:81``, icmp ``type:code`` (``-1`` any), or ``any``."""
    if rule.protocol is None:
        return "any"
    if rule.protocol != "icmp" and rule.from_port == rule.to_port:
        return str(rule.from_port)
    return f"{rule.from_port}:{rule.to_port}"


def source_text(rule: fw.SecurityGroupRule, names: dict[int, str]) -> str:
    if rule.cidr is not None:
        return str(rule.cidr)
    group = rule.source_group
    return f"group {names.get(group or 0, group)}"


def rule_dict(
    rule: fw.SecurityGroupRule, names: dict[int, str]
) -> dict[str, Any]:
    return {
        "id": rule.id,
        "protocol": rule.protocol,
        "from_port": rule.from_port,
        "to_port": rule.to_port,
        "cidr": None if rule.cidr is None else str(rule.cidr),
        "source_group": (
            None
            if rule.source_group is None
            else names.get(rule.source_group, str(rule.source_group))
        ),
    }


def group_dict(info: db_api.SecurityGroupInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "project_id": info.project_id,
        "description": info.description,
        "rules": [rule_dict(r, info.source_names) for r in info.rules],
        "instances": list(info.instances),
    }


def _rules_table(info: db_api.SecurityGroupInfo) -> str:
    if not info.rules:
        return "No rules\n"
    rows = [
        (r.id, r.protocol or "any", port_text(r),
         source_text(r, info.source_names))
        for r in info.rules
    ]  # fmt: skip
    return output.table(RULE_HEADERS, rows)


def _show_text(info: db_api.SecurityGroupInfo) -> str:
    members = ", ".join(info.instances) or "none"
    head = (
        f"security group {info.name} (id {info.id}, project "
        f"{info.project_id or 'none'}): {info.description or ''}\n"
        f"instances: {members}\n"
    )
    return head + _rules_table(info)


def secgroup_create(ctx: cli.Context, args: argparse.Namespace) -> int:
    info = db_api.secgroup_create(
        ctx.db,
        args.group,
        description=args.description,
        project_id=args.project,
    )
    return cli.write(
        ctx,
        args,
        f"Created security group {info.name} (id {info.id})\n",
        group_dict(info),
    )


def secgroup_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    found = db_api.secgroup_list(ctx.db, project_id=args.project)
    if not found:
        table = "No security groups found\n"
    else:
        table = output.table(
            GROUP_HEADERS,
            [
                (g.name, g.project_id, g.description, len(g.rules),
                 len(g.instances))
                for g in found
            ],
        )  # fmt: skip
    return cli.write(ctx, args, table, [group_dict(g) for g in found])


def secgroup_show(ctx: cli.Context, args: argparse.Namespace) -> int:
    info = db_api.secgroup_get(ctx.db, args.group, project_id=args.project)
    return cli.write(ctx, args, _show_text(info), group_dict(info))


def secgroup_delete(ctx: cli.Context, args: argparse.Namespace) -> int:
    info = db_api.secgroup_delete(ctx.db, args.group, project_id=args.project)
    ctx.out.write(
        f"Deleted security group {info.name} "
        f"({output.plural(len(info.rules), 'rule')})\n"
    )
    return 0


def secgroup_rule_add(ctx: cli.Context, args: argparse.Namespace) -> int:
    rule = db_api.secgroup_rule_add(
        ctx.db, args.group, _spec(args), project_id=args.project
    )
    names: dict[int, str] = {}
    if rule.source_group is not None:
        names[rule.source_group] = args.source_group
    text = (
        f"Added rule {rule.id} to {args.group}: {rule.protocol or 'any'} "
        f"{port_text(rule)} from {source_text(rule, names)}\n"
    )
    return cli.write(ctx, args, text, rule_dict(rule, names))


def secgroup_rule_delete(ctx: cli.Context, args: argparse.Namespace) -> int:
    has_spec = any(
        getattr(args, name) is not None
        for name in ("protocol", "port_range", "icmp_type", "icmp_code")
        + ("cidr", "source_group")
    )
    if (args.rule_id is not None) == has_spec:
        raise exception.InvalidInput(
            reason="give a RULE_ID or the rule's options (--protocol ...), "
            "one of them"
        )
    rule: int | db_api.RuleSpec
    if args.rule_id is not None:
        rule = int(_int_text(args.rule_id, "rule id"))
    else:
        rule = _spec(args)
    done = db_api.secgroup_rule_delete(
        ctx.db, args.group, rule, project_id=args.project
    )
    ctx.out.write(f"Deleted rule {done.id} of {args.group}\n")
    return 0
