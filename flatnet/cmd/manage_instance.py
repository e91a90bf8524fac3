"""flatnet-manage instance: the parsers (light); the handlers are in
:mod:`flatnet.cmd.instance_commands`."""

from __future__ import annotations

from flatnet.cmd import cli


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "instance", "instances and their fixed IPs")
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
    create.add_argument("--host", help="compute host of the instance")
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
