"""flatnet-manage instance: the handlers (stand-ins for nova boot and
delete)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flatnet import exception, model
from flatnet.cmd import cli, output
from flatnet.db import api as db_api
from flatnet.plan import boot_data
from flatnet.service import manager


def _wait(
    ctx: cli.Context,
    args: argparse.Namespace,
    infos: Sequence[model.NetworkInfo],
) -> None:
    by_host: dict[str, list[model.NetworkInfo]] = {}
    for info in infos:
        host = info.network.host if not info.network.multi_host else None
        by_host.setdefault(host or args.host or ctx.settings.host, []).append(
            info
        )
    for host, group in by_host.items():
        manager.wait_ready(ctx.db, group, host, args.timeout)


def _show(
    ctx: cli.Context,
    args: argparse.Namespace,
    instance: model.Instance,
    infos: Sequence[model.NetworkInfo],
) -> int:
    data = output.instance_dict(instance, infos)
    data["security_groups"] = db_api.instance_secgroups(ctx.db, instance.uuid)
    return cli.write(ctx, args, output.vifs_table(instance, infos), data)


def _read(path: str | None, option: str, limit: int) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise exception.InvalidInput(
            reason=f"{option} {path}: {exc.strerror}"
        ) from exc
    if len(data) > limit:
        raise exception.InvalidInput(
            reason=f"{option} {path}: larger than {limit} bytes"
        )
    return data


def _boot(args: argparse.Namespace) -> boot_data.BootData:
    """--user-data, --key-name and --public-key, validated."""
    user_data = _read(
        args.user_data, "--user-data", boot_data.MAX_USER_DATA_RAW
    )
    key = _read(args.public_key, "--public-key", boot_data.MAX_PUBLIC_KEY)
    try:
        text = None if key is None else key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise exception.InvalidInput(
            reason=f"--public-key {args.public_key}: not UTF-8 text"
        ) from exc
    return boot_data.boot_data(user_data, args.key_name, text)


def instance_create(ctx: cli.Context, args: argparse.Namespace) -> int:
    """Allocate; with --wait, also wait until DHCP serves it. A wait
    that times out keeps the allocation and says how to remove it."""
    infos = ctx.manager.allocate_for_instance(
        args.name,
        mac_address=args.mac,
        network=args.network,
        host=args.host or ctx.settings.host,
        security_groups=args.secgroup or ["default"],
        boot=_boot(args),
    )
    instance = infos[0].instance
    if args.wait:
        try:
            _wait(ctx, args, infos)
        except exception.NotReady as exc:
            _show(ctx, args, instance, infos)
            kept = ", ".join(str(i.address) for i in infos)
            raise exception.NotReady(
                f"{exc}; instance {instance.hostname} was created and keeps "
                f"{kept}: remove it with 'flatnet-manage instance delete "
                f"{instance.hostname}'",
                **exc.kwargs,
            ) from exc
    return _show(ctx, args, instance, infos)


def instance_show(ctx: cli.Context, args: argparse.Namespace) -> int:
    instance = db_api.instance_get(ctx.db, args.name)
    infos = db_api.network_info(ctx.db, instance.uuid)
    return _show(ctx, args, instance, infos)


def instance_list(ctx: cli.Context, args: argparse.Namespace) -> int:
    instances = db_api.instance_list(ctx.db, host=args.host)
    addresses: dict[str, list[str]] = {}
    which = db_api.FixedIpFilter(host=args.host, in_use_only=True)
    for f in db_api.fixed_ip_list(ctx.db, which):
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


def instance_delete(ctx: cli.Context, args: argparse.Namespace) -> int:
    instance = db_api.instance_get(ctx.db, args.name)
    releases = ctx.manager.deallocate_for_instance(instance.uuid)
    freed = ", ".join(str(r.address) for r in releases) or "no addresses"
    ctx.out.write(f"Deleted instance {instance.hostname} ({freed})\n")
    return 0


def instance_secgroup_add(ctx: cli.Context, args: argparse.Namespace) -> int:
    db_api.instance_add_secgroup(ctx.db, args.name, args.group)
    ctx.out.write(f"Added {args.name} to security group {args.group}\n")
    return 0


def instance_secgroup_remove(
    ctx: cli.Context, args: argparse.Namespace
) -> int:
    db_api.instance_remove_secgroup(ctx.db, args.name, args.group)
    ctx.out.write(f"Removed {args.name} from security group {args.group}\n")
    return 0
