"""flatnet-manage floating: the handlers (nova-manage floating, plus
associate/disassociate)."""

from __future__ import annotations

import argparse

from flatnet import ipam
from flatnet.cmd import cli, output
from flatnet.db import api as db_api
from flatnet.plan.bridge import validate_device_name
from flatnet.service import manager


def floating_create(ctx: cli.Context, args: argparse.Namespace) -> int:
    max_size = ctx.settings.manager.max_network_size
    addresses = ipam.floating_addresses(args.ip_range, max_size)
    pool = args.pool or ctx.settings.default_floating_pool
    manager.check_text(pool, "pool")
    interface = args.interface or ctx.settings.public_interface
    if interface is not None:
        validate_device_name(interface)
    count = db_api.floating_create(
        ctx.db, addresses, pool=pool, interface=interface
    )
    ctx.out.write(
        f"Created {output.plural(count, 'floating IP')} in pool {pool}\n"
    )
    return 0


def floating_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    found = db_api.floating_list(ctx.db)
    if args.host:
        found = [f for f in found if f.host == args.host]
    return cli.write(
        ctx,
        args,
        output.floating_table(found),
        [output.floating_dict(f) for f in found],
    )


def floating_associate(ctx: cli.Context, args: argparse.Namespace) -> int:
    host = args.host or ctx.settings.host
    if args.address:
        floating = db_api.floating_associate(
            ctx.db, ipam.parse_address(args.address), args.instance, host
        )
    else:
        pool = args.pool or ctx.settings.default_floating_pool
        floating = db_api.floating_associate_from_pool(
            ctx.db, pool, args.instance, host
        )
    ctx.out.write(
        f"Associated {floating.address} with {args.instance} "
        f"({floating.fixed_address})\n"
    )
    return 0


def floating_disassociate(ctx: cli.Context, args: argparse.Namespace) -> int:
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


def floating_delete(ctx: cli.Context, args: argparse.Namespace) -> int:
    """``--address A`` or ``--ip-range R``; addresses of R that are in
    no pool (deleted before) are skipped, as nova-manage did."""
    if args.address is not None:
        addresses = [ipam.parse_address(args.address)]
    else:
        max_size = ctx.settings.manager.max_network_size
        addresses = ipam.floating_addresses(args.ip_range, max_size)
    skip = args.address is None and len(addresses) > 1
    done = db_api.floating_delete(ctx.db, addresses, skip_missing=skip)
    text = f"Deleted {output.plural(len(done.deleted), 'floating IP')}"
    if done.missing:
        text += (
            f" ({output.plural(len(done.missing), 'address', 'addresses')}"
            f" of {args.ip_range} in no pool, skipped)"
        )
    ctx.out.write(text + "\n")
    return 0
