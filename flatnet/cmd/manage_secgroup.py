"""flatnet-manage secgroup: the parsers (light; the handlers are in
:mod:`flatnet.cmd.secgroup_commands`)."""

from __future__ import annotations

import argparse

from flatnet.cmd import cli

#: The top-level words this module registers, with their help.
HELP = {"secgroup": "security groups and their rules"}


def _project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", help="project of the group (default: no project)"
    )


def _rule_spec(parser: argparse.ArgumentParser, required: bool) -> None:
    """nova's ``secgroup-add-rule`` as options: protocol, ports or icmp
    type/code, and a CIDR or a source group (default 0.0.0.0/0)."""
    parser.add_argument(
        "--protocol",
        required=required,
        metavar="tcp|udp|icmp",
        help="protocol of the traffic to accept",
    )
    parser.add_argument(
        "--port-range",
        metavar="FROM:TO",
        help="tcp/udp destination ports (one port: N or N:N)",
    )
    parser.add_argument(
        "--icmp-type", metavar="TYPE", help="icmp type, -1 for any"
    )
    parser.add_argument(
        "--icmp-code", metavar="CODE", help="icmp code, -1 for any"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--cidr", help="source network a.b.c.d/n (default: 0.0.0.0/0)"
    )
    source.add_argument(
        "--source-group",
        metavar="GROUP",
        help="accept from the members of this group (on every host)",
    )


def _named(
    actions: cli.Subparsers,
    common: cli.Parser,
    name: str,
    help_text: str,
) -> argparse.ArgumentParser:
    parser = cli.leaf(
        actions, common, name, f"secgroup_commands:secgroup_{name}", help_text
    )
    parser.add_argument("group", metavar="GROUP", help="group name")
    _project(parser)
    return parser


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "secgroup", HELP["secgroup"])
    create = _named(actions, common, "create", "create a security group")
    create.add_argument("--description", help="free text")
    cli.add_format(create)
    listing = cli.leaf(
        actions,
        common,
        "list",
        "secgroup_commands:secgroup_list",
        "list security groups",
    )
    _project(listing)
    cli.add_format(listing)
    cli.add_format(_named(actions, common, "show", "one group: rules, users"))
    _named(actions, common, "delete", "delete an unused security group")
    rule_add = cli.leaf(
        actions,
        common,
        "rule-add",
        "secgroup_commands:secgroup_rule_add",
        "add an ingress rule to a group",
    )
    rule_add.add_argument("group", metavar="GROUP", help="group name")
    _rule_spec(rule_add, required=True)
    _project(rule_add)
    cli.add_format(rule_add)
    rule_delete = cli.leaf(
        actions,
        common,
        "rule-delete",
        "secgroup_commands:secgroup_rule_delete",
        "delete a rule by id (see show) or by the same options as rule-add",
    )
    rule_delete.add_argument("group", metavar="GROUP", help="group name")
    rule_delete.add_argument(
        "rule_id", nargs="?", metavar="RULE_ID", help="the rule's id"
    )
    _rule_spec(rule_delete, required=False)
    _project(rule_delete)
