"""flatnet-manage instance commands (stand-ins for nova boot/delete)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flatnet import model
from flatnet.cmd import cli, output
from flatnet.db import api as db_api
from flatnet.service import manager


# --- instance -----------------------------------------------------------
def _wait(
    ctx: cli.Context,
    args: argparse.Namespace,
    infos: Sequence[model.NetworkInfo],
) -> None:
    by_host: dict[str, list[model.NetworkInfo]] = {}
    for info in infos:
        host = info.network.host if not info.network.multi_host else None
        by_host.setdefault(host or args.host or ctx.conf.host, []).append(info)
    for host, group in by_host.items():
        manager.wait_ready(ctx.db, group, host, args.timeout)


def _instance_create(ctx: cli.Context, args: argparse.Namespace) -> int:
    infos = ctx.manager.allocate_for_instance(
        args.name, mac_address=args.mac, network=args.network, host=args.host
    )
    if args.wait:
        _wait(ctx, args, infos)
    instance = infos[0].instance
    return cli.write(
        ctx,
        args,
        output.vifs_table(instance, infos),
        output.instance_dict(instance, infos),
    )


def _instance_show(ctx: cli.Context, args: argparse.Namespace) -> int:
    instance = db_api.instance_get(ctx.db, args.name)
    infos = db_api.network_info(ctx.db, instance.uuid)
    return cli.write(
        ctx,
        args,
        output.vifs_table(instance, infos),
        output.instance_dict(instance, infos),
    )


def _instance_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    instances = db_api.instance_list(ctx.db, host=args.host)
    addresses: dict[str, list[str]] = {}
    for f in db_api.fixed_ip_list(ctx.db, host=args.host):
        if f.instance_uuid and f.allocated:
            addresses.setdefault(f.instance_uuid, []).append(str(f.address))
    data = [
        {
            "uuid": i.uuid,
            "hostname": i.hostname,
            "host": i.host,
            "addresses": addresses.get(i.uuid, []),
        }
        for i in instances
    ]
    return cli.write(
        ctx, args, output.instances_table(instances, addresses), data
    )


def _instance_delete(ctx: cli.Context, args: argparse.Namespace) -> int:
    releases = ctx.manager.deallocate_for_instance(args.name)
    freed = ", ".join(str(r.address) for r in releases) or "no addresses"
    ctx.out.write(f"Deleted instance {args.name} ({freed})\n")
    return 0


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    actions = cli.actions(groups, "instance", "instances and their fixed IPs")
    create = cli.leaf(
        actions,
        common,
        "create",
        _instance_create,
        "create an instance and allocate its addresses",
    )
    create.add_argument("name", help="host name (an RFC 1123 label)")
    create.add_argument("--mac")
    create.add_argument("--network", help="label, uuid or id")
    create.add_argument("--host")
    create.add_argument(
        "--wait",
        action="store_true",
        help="wait until DHCP on the host serves it",
    )
    create.add_argument("--timeout", type=float, default=30.0)
    cli.add_format(create)
    listing = cli.leaf(actions, common, "list", _instance_list, "list")
    listing.add_argument("--host")
    cli.add_format(listing)
    show = cli.leaf(actions, common, "show", _instance_show, "show one")
    show.add_argument("name", help="name or uuid")
    cli.add_format(show)
    delete = cli.leaf(
        actions, common, "delete", _instance_delete, "deallocate and delete"
    )
    delete.add_argument("name", help="name or uuid")
