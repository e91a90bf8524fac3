"""flatnet-manage floating: the parsers (light; the handlers are in
:mod:`flatnet.cmd.floating_commands`)."""

from __future__ import annotations

import argparse

from flatnet.cmd import cli

#: The top-level words this module registers, with their help.
HELP = {"floating": "floating IPs"}


def _ip_range(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--ip-range",
        "--ip_range",
        dest="ip_range",
        required=required,
        metavar="IP|CIDR",
        help="one address, or a CIDR's host addresses",
    )


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "floating", HELP["floating"])
    create = cli.leaf(
        actions,
        common,
        "create",
        "floating_commands:floating_create",
        "add an address or a CIDR's hosts to a pool",
    )
    _ip_range(create, required=True)
    create.add_argument("--pool", help="pool (default: default_floating_pool)")
    create.add_argument(
        "--interface", help="interface to bind to (default: public_interface)"
    )
    listing = cli.leaf(
        actions,
        common,
        "list",
        "floating_commands:floating_list",
        "list floating IPs",
    )
    listing.add_argument("--host", help="only those NATed by this host")
    cli.add_format(listing)
    _associate(actions, common)
    _delete(actions, common)


def _associate(actions: cli.Subparsers, common: cli.Parser) -> None:
    assoc = cli.leaf(
        actions,
        common,
        "associate",
        "floating_commands:floating_associate",
        "point a floating IP at an instance's fixed IP",
    )
    assoc.add_argument(
        "--address", help="floating IP (default: first free of --pool)"
    )
    assoc.add_argument(
        "--pool", help="pool to take from (default: default_floating_pool)"
    )
    assoc.add_argument("--instance", required=True, help="name or uuid")
    assoc.add_argument(
        "--host", help="network host doing the NAT (default: host)"
    )
    disassoc = cli.leaf(
        actions,
        common,
        "disassociate",
        "floating_commands:floating_disassociate",
        "detach a floating IP",
    )
    disassoc.add_argument("--address", required=True, help="the floating IP")


def _delete(actions: cli.Subparsers, common: cli.Parser) -> None:
    delete = cli.leaf(
        actions,
        common,
        "delete",
        "floating_commands:floating_delete",
        "remove unassociated floating IPs",
    )
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument("--address", help="one floating IP")
    which.add_argument(
        "--ip-range",
        "--ip_range",
        dest="ip_range",
        metavar="IP|CIDR",
        help="a CIDR's host addresses (those in no pool are skipped)",
    )
