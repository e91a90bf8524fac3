"""flatnet-manage floating commands (nova-manage floating, plus
associate/disassociate)."""

from __future__ import annotations

import argparse

from flatnet import ipam
from flatnet.cmd import cli, output
from flatnet.db import api as db_api
from flatnet.plan.bridge import validate_device_name
from flatnet.service import manager


def _floating_create(ctx: cli.Context, args: argparse.Namespace) -> int:
    addresses = ipam.floating_addresses(args.ip_range)
    pool = args.pool or ctx.conf.default_floating_pool
    manager.check_text(pool, "pool")
    interface = args.interface or ctx.conf.public_interface or None
    if interface is not None:
        validate_device_name(interface)
    count = db_api.floating_create(
        ctx.db, addresses, pool=pool, interface=interface
    )
    ctx.out.write(f"Created {count} floating IPs in pool {pool}\n")
    return 0


def _floating_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    found = db_api.floating_list(ctx.db)
    if args.host:
        found = [f for f in found if f.host == args.host]
    return cli.write(
        ctx,
        args,
        output.floating_table(found),
        [output.floating_dict(f) for f in found],
    )


def _floating_associate(ctx: cli.Context, args: argparse.Namespace) -> int:
    host = args.host or ctx.conf.host
    if args.address:
        floating = db_api.floating_associate(
            ctx.db, ipam.parse_address(args.address), args.instance, host
        )
    else:
        pool = args.pool or ctx.conf.default_floating_pool
        floating = db_api.floating_associate_from_pool(
            ctx.db, pool, args.instance, host
        )
    ctx.out.write(
        f"Associated {floating.address} with {args.instance} "
        f"({floating.fixed_address})\n"
    )
    return 0


def _floating_disassociate(ctx: cli.Context, args: argparse.Namespace) -> int:
    before = db_api.floating_disassociate(
        ctx.db, ipam.parse_address(args.address)
    )
    if before.fixed_address is None:
        ctx.out.write(f"{before.address} was not associated\n")
    else:
        ctx.out.write(
            f"Disassociated {before.address} from {before.fixed_address}\n"
        )
    return 0


def _floating_delete(ctx: cli.Context, args: argparse.Namespace) -> int:
    count = db_api.floating_delete(
        ctx.db, ipam.floating_addresses(args.ip_range)
    )
    ctx.out.write(f"Deleted {count} floating IPs\n")
    return 0


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "floating", "floating IPs")
    create = cli.leaf(
        actions,
        common,
        "create",
        _floating_create,
        "add an address or a CIDR's hosts to a pool",
    )
    create.add_argument(
        "--ip-range",
        "--ip_range",
        dest="ip_range",
        required=True,
        metavar="IP|CIDR",
    )
    create.add_argument("--pool")
    create.add_argument("--interface")
    listing = cli.leaf(actions, common, "list", _floating_list, "list")
    listing.add_argument("--host")
    cli.add_format(listing)
    assoc = cli.leaf(
        actions,
        common,
        "associate",
        _floating_associate,
        "point a floating IP at an instance's fixed IP",
    )
    assoc.add_argument(
        "--address", help="floating IP (default: first free of --pool)"
    )
    assoc.add_argument("--pool")
    assoc.add_argument("--instance", required=True, help="name or uuid")
    assoc.add_argument("--host", help="network host doing the NAT")
    disassoc = cli.leaf(
        actions,
        common,
        "disassociate",
        _floating_disassociate,
        "detach a floating IP",
    )
    disassoc.add_argument("--address", required=True)
    delete = cli.leaf(
        actions,
        common,
        "delete",
        _floating_delete,
        "remove unassociated floating IPs",
    )
    delete.add_argument("--ip-range", "--ip_range", dest="ip_range",
                        required=True, metavar="IP|CIDR")  # fmt: skip
