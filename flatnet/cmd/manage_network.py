"""flatnet-manage db, config, network and fixed: the parsers (light).

The handlers are in :mod:`flatnet.cmd.db_commands` and
:mod:`flatnet.cmd.network_commands`, imported only when they run.
"""

from __future__ import annotations

import argparse

from flatnet.cmd import cli

#: The top-level words this module registers, with their help.
HELP = {
    "db": "database schema",
    "config": "the configuration in use",
    "network": "flat networks",
    "fixed": "fixed IPs",
}


# --- db, config -----------------------------------------------------------
def add_db(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "db", HELP["db"])
    cli.leaf(
        actions,
        common,
        "sync",
        "db_commands:db_sync",
        "create the database or upgrade its schema",
    )
    cli.leaf(
        actions,
        common,
        "version",
        "db_commands:db_version",
        "show the schema revision",
    )


def add_config(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "config", HELP["config"])
    show = cli.leaf(
        actions,
        common,
        "show",
        "db_commands:config_show",
        "show the files read, every option's value and where it was set",
    )
    cli.add_format(show)


# --- network ------------------------------------------------------------
def _bool_flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("t", "true", "yes", "1", "on"):
        return True
    if lowered in ("f", "false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected T or F, got {value!r}")


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {value!r}"
        ) from None


_NETWORK_OPTS: tuple[tuple[tuple[str, ...], dict[str, object]], ...] = (
    (("--label",), {"required": True, "help": "unique name"}),
    (("--fixed-range-v4", "--fixed_range_v4"),
     {"dest": "cidr", "required": True, "metavar": "CIDR",
      "help": "IPv4 range, at least /30 and at most max_network_size"}),
    (("--bridge",), {"help": "bridge (default: flat_network_bridge)"}),
    (("--bridge-interface", "--bridge_interface"),
     {"help": "NIC put into the bridge (flat_interface overrides it)"}),
    (("--dns1",), {"help": "first DNS server (default: flat_network_dns)"}),
    (("--dns2",), {"help": "second DNS server"}),
    (("--gateway",), {"help": "gateway (default: the first address)"}),
    (("--dhcp-server", "--dhcp_server"),
     {"help": "DHCP server address (default: the gateway)"}),
    (("--fixed-cidr", "--fixed_cidr"),
     {"help": "part of the range handed to instances (default: all)"}),
    (("--mtu",), {"type": _int, "help": "MTU of the bridge (68-65535)"}),
    (("--uuid",), {"help": "network uuid (default: a new one)"}),
    (("--project-id", "--project_id"), {"help": "owning project"}),
    (("--multi-host", "--multi_host"),
     {"type": _bool_flag, "nargs": "?", "const": True, "metavar": "T|F",
      "help": "DHCP on every host (default: multi_host)"}),
)  # fmt: skip


def add_network(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "network", HELP["network"])
    create = cli.leaf(
        actions,
        common,
        "create",
        "network_commands:network_create",
        "create a network",
    )
    for flags, kwargs in _NETWORK_OPTS:
        create.add_argument(*flags, **kwargs)  # type: ignore[arg-type]
    cli.add_format(create)
    cli.add_format(
        cli.leaf(
            actions,
            common,
            "list",
            "network_commands:network_list",
            "list networks",
        )
    )
    delete = cli.leaf(
        actions,
        common,
        "delete",
        "network_commands:network_delete",
        "delete a network without allocated addresses",
    )
    delete.add_argument("network", nargs="?", help="id, label or uuid")
    delete.add_argument("--uuid", help="the network's uuid")
    delete.add_argument(
        "--fixed-range",
        "--fixed_range",
        dest="fixed_range",
        help="the network's CIDR",
    )


# --- fixed --------------------------------------------------------------
def add_fixed(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "fixed", HELP["fixed"])
    listing = cli.leaf(
        actions,
        common,
        "list",
        "network_commands:fixed_list",
        "a summary per network, then the addresses in use",
    )
    listing.add_argument("--host", help="only instances on this host")
    listing.add_argument(
        "--network", help="only this network (id, label, uuid)"
    )
    listing.add_argument(
        "--address", metavar="IP|CIDR", help="only this address or range"
    )
    listing.add_argument(
        "--all",
        action="store_true",
        help="every address, also the free ones (a /16 is 65,536 rows)",
    )
    cli.add_format(listing)
    for name, flag in (("reserve", True), ("unreserve", False)):
        parser = cli.leaf(
            actions,
            common,
            name,
            "network_commands:fixed_reserve",
            f"{name} an address (never hand it to an instance)"
            if flag
            else f"{name} an address (the gateway and DHCP address stay)",
        )
        parser.add_argument("--address", required=True, help="the address")
        parser.set_defaults(reserve=flag)
