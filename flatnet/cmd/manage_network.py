"""flatnet-manage db, network and fixed commands (nova-manage's)."""

from __future__ import annotations

import argparse

from flatnet import exception, ipam
from flatnet.cmd import cli, output
from flatnet.db import api as db_api
from flatnet.db import migration
from flatnet.service import manager


# --- db -----------------------------------------------------------------
def _db_sync(ctx: cli.Context, args: argparse.Namespace) -> int:
    db_api.sync(ctx.db)
    return 0


def _db_version(ctx: cli.Context, args: argparse.Namespace) -> int:
    ctx.out.write(f"{migration.current(ctx.db) or 'None'}\n")
    return 0


def add_db(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "db", "database schema")
    cli.leaf(actions, common, "sync", _db_sync, "create/upgrade the schema")
    cli.leaf(
        actions, common, "version", _db_version, "show the schema revision"
    )


# --- network ------------------------------------------------------------
def _bool_flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("t", "true", "yes", "1", "on"):
        return True
    if lowered in ("f", "false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected T or F, got {value!r}")


def _network_create(ctx: cli.Context, args: argparse.Namespace) -> int:
    req = manager.NetworkRequest(
        label=args.label,
        cidr=args.cidr,
        bridge=args.bridge,
        bridge_interface=args.bridge_interface,
        dns1=args.dns1,
        dns2=args.dns2,
        gateway=args.gateway,
        dhcp_server=args.dhcp_server,
        fixed_cidr=args.fixed_cidr,
        mtu=args.mtu,
        uuid=args.uuid,
        project_id=args.project_id,
        multi_host=args.multi_host,
    )
    net = ctx.manager.create_network(req)
    return cli.write(
        ctx, args, output.networks_table([net]), output.network_dict(net)
    )


def _network_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    nets = db_api.network_list(ctx.db)
    return cli.write(
        ctx,
        args,
        output.networks_table(nets),
        [output.network_dict(n) for n in nets],
    )


def _network_delete(ctx: cli.Context, args: argparse.Namespace) -> int:
    ident = args.network or args.uuid or args.fixed_range
    if not ident:
        raise exception.InvalidInput(
            reason="give a network (id, label, uuid) or --uuid/--fixed-range"
        )
    net = db_api.network_delete(ctx.db, ident)
    ctx.out.write(f"Deleted network {net.label} ({net.cidr})\n")
    return 0


_NETWORK_OPTS: tuple[tuple[tuple[str, ...], dict[str, object]], ...] = (
    (("--label",), {"required": True}),
    (("--fixed-range-v4", "--fixed_range_v4"),
     {"dest": "cidr", "required": True, "metavar": "CIDR"}),
    (("--bridge",), {}),
    (("--bridge-interface", "--bridge_interface"), {}),
    (("--dns1",), {}), (("--dns2",), {}), (("--gateway",), {}),
    (("--dhcp-server", "--dhcp_server"), {}),
    (("--fixed-cidr", "--fixed_cidr"), {}),
    (("--mtu",), {"type": int}), (("--uuid",), {}),
    (("--project-id", "--project_id"), {}),
    (("--multi-host", "--multi_host"),
     {"type": _bool_flag, "nargs": "?", "const": True, "metavar": "T|F"}),
)  # fmt: skip


def add_network(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "network", "flat networks")
    create = cli.leaf(
        actions, common, "create", _network_create, "create a network"
    )
    for flags, kwargs in _NETWORK_OPTS:
        create.add_argument(*flags, **kwargs)  # type: ignore[arg-type]
    cli.add_format(create)
    cli.add_format(
        cli.leaf(actions, common, "list", _network_list, "list networks")
    )
    delete = cli.leaf(
        actions,
        common,
        "delete",
        _network_delete,
        "delete a network without allocated addresses",
    )
    delete.add_argument("network", nargs="?", help="id, label or uuid")
    delete.add_argument("--uuid")
    delete.add_argument("--fixed-range", "--fixed_range", dest="fixed_range")


# --- fixed --------------------------------------------------------------
def _fixed_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    fixed = db_api.fixed_ip_list(ctx.db, host=args.host)
    return cli.write(
        ctx,
        args,
        output.fixed_table(fixed),
        [output.fixed_dict(f) for f in fixed],
    )


def _fixed_reserve(ctx: cli.Context, args: argparse.Namespace) -> int:
    address = ipam.parse_address(args.address)
    db_api.fixed_ip_set_reserved(ctx.db, address, args.reserve)
    return 0


def add_fixed(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "fixed", "fixed IPs")
    listing = cli.leaf(actions, common, "list", _fixed_list, "list fixed IPs")
    listing.add_argument("--host")
    cli.add_format(listing)
    for name, flag in (("reserve", True), ("unreserve", False)):
        parser = cli.leaf(
            actions, common, name, _fixed_reserve, f"{name} an address"
        )
        parser.add_argument("--address", required=True)
        parser.set_defaults(reserve=flag)
