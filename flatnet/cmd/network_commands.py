"""flatnet-manage network and fixed: the handlers."""

from __future__ import annotations

import argparse

import netaddr

from flatnet import exception, ipam
from flatnet.cmd import cli, output
from flatnet.db import api as db_api


# --- network ------------------------------------------------------------
def network_create(ctx: cli.Context, args: argparse.Namespace) -> int:
    # only this handler needs the manager (network list must not pay)
    from flatnet.service import manager  # noqa: PLC0415

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


def network_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    nets = db_api.network_list(ctx.db)
    return cli.write(
        ctx,
        args,
        output.networks_table(nets),
        [output.network_dict(n) for n in nets],
    )


def network_delete(ctx: cli.Context, args: argparse.Namespace) -> int:
    ident = args.network or args.uuid or args.fixed_range
    if not ident:
        raise exception.InvalidInput(
            reason="give a network (id, label, uuid) or --uuid/--fixed-range"
        )
    net = db_api.network_delete(ctx.db, ident)
    ctx.out.write(f"Deleted network {net.label} ({net.cidr})\n")
    return 0


# --- fixed --------------------------------------------------------------
def _within(text: str | None) -> netaddr.IPNetwork | None:
    if text is None:
        return None
    if "/" in text:
        return ipam.parse_cidr(text)
    return netaddr.IPNetwork(f"{ipam.parse_address(text)}/32")


def fixed_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    """A summary per network, then the rows in use (or ``--all``)."""
    which = db_api.FixedIpFilter(
        host=args.host,
        network=args.network,
        within=_within(args.address),
        in_use_only=not args.all,
    )
    fixed = db_api.fixed_ip_list(ctx.db, which)
    if args.format == "json":
        return cli.write(ctx, args, "", [output.fixed_dict(f) for f in fixed])
    only = (
        db_api.network_get(ctx.db, args.network).id if args.network else None
    )
    summary = [
        s
        for s in db_api.fixed_ip_summary(ctx.db)
        if only is None or s.network_id == only
    ]
    text = output.fixed_summary(summary) + output.fixed_table(fixed)
    if not args.all:
        text += "(free addresses not shown: --all shows every address)\n"
    ctx.out.write(text)
    return 0


def fixed_reserve(ctx: cli.Context, args: argparse.Namespace) -> int:
    address = ipam.parse_address(args.address)
    db_api.fixed_ip_set_reserved(ctx.db, address, args.reserve)
    ctx.out.write(
        f"{address} is {'reserved' if args.reserve else 'not reserved'}\n"
    )
    return 0
