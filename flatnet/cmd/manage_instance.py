"""flatnet-manage instance: the parsers (light); the handlers are in
:mod:`flatnet.cmd.instance_commands`."""

from __future__ import annotations

import argparse

from flatnet.cmd import cli

#: The top-level words this module registers, with their help.
HELP = {"instance": "instances and their fixed IPs"}


def _secgroups(create: argparse.ArgumentParser) -> None:
    create.add_argument(
        "--secgroup",
        action="append",
        metavar="GROUP",
        help="security group, repeatable (default: default)",
    )


def _secgroup_actions(actions: cli.Subparsers, common: cli.Parser) -> None:
    for verb, text in (("add", "put into"), ("remove", "take out of")):
        parser = cli.leaf(
            actions,
            common,
            f"secgroup-{verb}",
            f"instance_commands:instance_secgroup_{verb}",
            f"{text} a security group",
        )
        parser.add_argument("name", help="name or uuid")
        parser.add_argument("group", metavar="GROUP", help="group name")


def _create(actions: cli.Subparsers, common: cli.Parser) -> None:
    create = cli.leaf(
        actions,
        common,
        "create",
        "instance_commands:instance_create",
        "create an instance and allocate its addresses",
    )
    create.add_argument("name", help="host name (an RFC 1123 label)")
    create.add_argument(
        "--mac", help="MAC address (default: a random fa:16:3e:...)"
    )
    create.add_argument(
        "--network", help="label, uuid or id (default: every network)"
    )
    create.add_argument(
        "--host", help="compute host of the instance (default: host)"
    )
    _secgroups(create)
    _boot_data(create)
    create.add_argument(
        "--wait",
        action="store_true",
        help="wait until DHCP on the network host serves it",
    )
    create.add_argument(
        "--timeout",
        type=cli.seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long --wait waits (default: 30, at most 3600)",
    )
    cli.add_format(create)


def _boot_data(create: argparse.ArgumentParser) -> None:
    create.add_argument(
        "--user-data",
        metavar="FILE",
        help="user data served by flatnet-metadata (at most 65535 bytes "
        "once base64 encoded, as nova)",
    )
    create.add_argument("--key-name", metavar="NAME", help="SSH key name")
    create.add_argument(
        "--public-key", metavar="FILE", help="OpenSSH public key (one line)"
    )


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "instance", HELP["instance"])
    _create(actions, common)
    listing = cli.leaf(
        actions,
        common,
        "list",
        "instance_commands:instance_list",
        "list instances",
    )
    listing.add_argument("--host", help="only instances on this host")
    cli.add_format(listing)
    show = cli.leaf(
        actions,
        common,
        "show",
        "instance_commands:instance_show",
        "show one instance and its interfaces",
    )
    show.add_argument("name", help="name or uuid")
    cli.add_format(show)
    delete = cli.leaf(
        actions,
        common,
        "delete",
        "instance_commands:instance_delete",
        "deallocate and delete",
    )
    delete.add_argument("name", help="name or uuid")
    _secgroup_actions(actions, common)
