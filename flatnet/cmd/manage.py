"""flatnet-manage: the admin CLI (nova-manage's network/fixed commands).

Exit codes: 0 success; 2 bad input, usage or configuration (one line
``error: ...`` on stderr, nothing changed); 1 anything else, including
NotReady from ``--wait`` and unexpected errors (one line; the traceback
goes to the log, shown with ``--debug``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO, TypeAlias

from oslo_config import cfg
from sqlalchemy import exc as sa_exc

from flatnet import conf as flatnet_conf
from flatnet import exception, ipam, model
from flatnet.cmd import output
from flatnet.db import api as db_api
from flatnet.db import migration
from flatnet.service import manager

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = "/etc/flatnet/flatnet.conf"


class UsageError(Exception):
    """argparse found bad arguments."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


Subparsers: TypeAlias = "argparse._SubParsersAction[_Parser]"
Handler: TypeAlias = Callable[["Context", argparse.Namespace], int]


@dataclasses.dataclass
class Context:
    """What a command handler needs: config, output, lazy DB + manager."""

    conf: cfg.ConfigOpts
    out: TextIO
    _db: db_api.Database | None = None

    @property
    def db(self) -> db_api.Database:
        if self._db is None:
            url = self.conf.database.connection
            try:
                self._db = db_api.Database(url)
            except sa_exc.ArgumentError as exc:
                raise exception.ConfigError(
                    reason=f"[database] connection: {exc}"
                ) from exc
        return self._db

    @property
    def manager(self) -> manager.FlatDHCPManager:
        c = self.conf
        settings = manager.ManagerSettings(
            flat_network_bridge=c.flat_network_bridge,
            flat_interface=c.flat_interface,
            flat_network_dns=c.flat_network_dns,
            multi_host=c.multi_host,
            share_dhcp_address=c.share_dhcp_address,
            create_unique_mac_address_attempts=(
                c.create_unique_mac_address_attempts
            ),
        )
        return manager.FlatDHCPManager(self.db, settings)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def _leaf(
    sub: Subparsers,
    common: _Parser,
    name: str,
    handler: Handler,
    help_text: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, parents=[common], help=help_text)
    parser.set_defaults(handler=handler)
    return parser


def _actions(groups: Subparsers, name: str, help_text: str) -> Subparsers:
    group = groups.add_parser(name, help=help_text)
    actions = group.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    return actions


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output format",
    )


def _write(
    ctx: Context, args: argparse.Namespace, table: str, data: object
) -> int:
    ctx.out.write(output.to_json(data) if args.format == "json" else table)
    return 0


# --- db -----------------------------------------------------------------
def _db_sync(ctx: Context, args: argparse.Namespace) -> int:
    db_api.sync(ctx.db)
    return 0


def _db_version(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.write(f"{migration.current(ctx.db) or 'None'}\n")
    return 0


def _add_db(groups: Subparsers, common: _Parser) -> None:
    actions = _actions(groups, "db", "database schema")
    _leaf(actions, common, "sync", _db_sync, "create/upgrade the schema")
    _leaf(actions, common, "version", _db_version, "show the schema revision")


# --- network ------------------------------------------------------------
def _bool_flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("t", "true", "yes", "1", "on"):
        return True
    if lowered in ("f", "false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected T or F, got {value!r}")


def _network_create(ctx: Context, args: argparse.Namespace) -> int:
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
    return _write(
        ctx, args, output.networks_table([net]), output.network_dict(net)
    )


def _network_list(ctx: Context, args: argparse.Namespace) -> int:
    nets = db_api.network_list(ctx.db)
    return _write(
        ctx,
        args,
        output.networks_table(nets),
        [output.network_dict(n) for n in nets],
    )


def _network_delete(ctx: Context, args: argparse.Namespace) -> int:
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


def _add_network(groups: Subparsers, common: _Parser) -> None:
    actions = _actions(groups, "network", "flat networks")
    create = _leaf(
        actions, common, "create", _network_create, "create a network"
    )
    for flags, kwargs in _NETWORK_OPTS:
        create.add_argument(*flags, **kwargs)  # type: ignore[arg-type]
    _add_format(create)
    _add_format(_leaf(actions, common, "list", _network_list, "list networks"))
    delete = _leaf(
        actions,
        common,
        "delete",
        _network_delete,
        "delete a network without allocated addresses",
    )
    delete.add_argument("network", nargs="?", help="id, label or uuid")
    delete.add_argument("--uuid")
    delete.add_argument("--fixed-range", "--fixed_range", dest="fixed_range")


# --- instance -----------------------------------------------------------
def _wait(
    ctx: Context, args: argparse.Namespace, infos: Sequence[model.NetworkInfo]
) -> None:
    by_host: dict[str, list[model.NetworkInfo]] = {}
    for info in infos:
        host = info.network.host if not info.network.multi_host else None
        by_host.setdefault(host or args.host or ctx.conf.host, []).append(info)
    for host, group in by_host.items():
        manager.wait_ready(ctx.db, group, host, args.timeout)


def _instance_create(ctx: Context, args: argparse.Namespace) -> int:
    infos = ctx.manager.allocate_for_instance(
        args.name, mac_address=args.mac, network=args.network, host=args.host
    )
    if args.wait:
        _wait(ctx, args, infos)
    instance = infos[0].instance
    return _write(
        ctx,
        args,
        output.vifs_table(instance, infos),
        output.instance_dict(instance, infos),
    )


def _instance_show(ctx: Context, args: argparse.Namespace) -> int:
    instance = db_api.instance_get(ctx.db, args.name)
    infos = db_api.network_info(ctx.db, instance.uuid)
    return _write(
        ctx,
        args,
        output.vifs_table(instance, infos),
        output.instance_dict(instance, infos),
    )


def _instance_list(ctx: Context, args: argparse.Namespace) -> int:
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
    return _write(
        ctx, args, output.instances_table(instances, addresses), data
    )


def _instance_delete(ctx: Context, args: argparse.Namespace) -> int:
    releases = ctx.manager.deallocate_for_instance(args.name)
    freed = ", ".join(str(r.address) for r in releases) or "no addresses"
    ctx.out.write(f"Deleted instance {args.name} ({freed})\n")
    return 0


def _add_instance(groups: Subparsers, common: _Parser) -> None:
    actions = _actions(groups, "instance", "instances and their fixed IPs")
    create = _leaf(
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
    _add_format(create)
    listing = _leaf(actions, common, "list", _instance_list, "list")
    listing.add_argument("--host")
    _add_format(listing)
    show = _leaf(actions, common, "show", _instance_show, "show one")
    show.add_argument("name", help="name or uuid")
    _add_format(show)
    delete = _leaf(
        actions, common, "delete", _instance_delete, "deallocate and delete"
    )
    delete.add_argument("name", help="name or uuid")


# --- fixed --------------------------------------------------------------
def _fixed_list(ctx: Context, args: argparse.Namespace) -> int:
    fixed = db_api.fixed_ip_list(ctx.db, host=args.host)
    return _write(
        ctx,
        args,
        output.fixed_table(fixed),
        [output.fixed_dict(f) for f in fixed],
    )


def _fixed_reserve(ctx: Context, args: argparse.Namespace) -> int:
    address = ipam.parse_address(args.address)
    db_api.fixed_ip_set_reserved(ctx.db, address, args.reserve)
    return 0


def _add_fixed(groups: Subparsers, common: _Parser) -> None:
    actions = _actions(groups, "fixed", "fixed IPs")
    listing = _leaf(actions, common, "list", _fixed_list, "list fixed IPs")
    listing.add_argument("--host")
    _add_format(listing)
    for name, flag in (("reserve", True), ("unreserve", False)):
        parser = _leaf(
            actions, common, name, _fixed_reserve, f"{name} an address"
        )
        parser.add_argument("--address", required=True)
        parser.set_defaults(reserve=flag)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--config-file",
        "--config_file",
        action="append",
        dest="config_files",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"configuration file (repeatable; default {DEFAULT_CONFIG})",
    )
    common.add_argument(
        "--debug",
        "-d",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log debug messages and tracebacks to stderr",
    )
    parser = _Parser(
        prog="flatnet-manage",
        description="Manage flatnet networks, instances and fixed IPs.",
        parents=[common],
    )
    # NOTE: no set_defaults() here: the parents' actions are shared
    # objects, so that would also change the subcommands' defaults.
    groups = parser.add_subparsers(dest="group", metavar="GROUP")
    groups.required = True
    _add_db(groups, common)
    _add_network(groups, common)
    _add_instance(groups, common)
    _add_fixed(groups, common)
    return parser


def _setup_logging(debug: bool, stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logger = logging.getLogger("flatnet")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    return handler


def load_config(config_files: Sequence[str] | None) -> cfg.ConfigOpts:
    """Parse the config files; raises ConfigError for any problem."""
    files = list(config_files or ())
    if not files and os.path.exists(DEFAULT_CONFIG):
        files = [DEFAULT_CONFIG]
    for path in files:
        if not os.access(path, os.R_OK):
            raise exception.ConfigError(reason=f"cannot read {path}")
    argv: list[str] = []
    for path in files:
        argv += ["--config-file", path]
    try:
        return flatnet_conf.parse(argv, default_config_files=[])
    except (cfg.Error, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise exception.ConfigError(reason=reason) from exc


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return "".join(c if c.isprintable() else "?" for c in first)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    conf = load_config(getattr(args, "config_files", None))
    ctx = Context(conf=conf, out=out)
    try:
        handler: Callable[[Context, argparse.Namespace], int]
        handler = args.handler
        return handler(ctx, args)
    finally:
        ctx.close()


def _report(err: TextIO, message: str) -> None:
    err.write(f"error: {_one_line(message)}\n")


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        return _run(args, out)
    except exception.NotReady as exc:
        _report(err, str(exc))
        return 1
    except exception.FlatnetError as exc:
        LOG.debug("command failed", exc_info=True)
        _report(err, str(exc))
        return 2
    except sa_exc.DBAPIError as exc:
        LOG.debug("database error", exc_info=True)
        _report(
            err,
            f"database error: {_one_line(str(exc.orig))} (has "
            "'flatnet-manage db sync' been run?)",
        )
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI's last resort
        LOG.debug("unexpected error", exc_info=True)
        _report(err, f"unexpected {type(exc).__name__}: {exc}")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run flatnet-manage with ``argv`` (default sys.argv[1:])."""
    out, err = sys.stdout, sys.stderr
    try:
        args = build_parser().parse_args(
            list(sys.argv[1:] if argv is None else argv)
        )
    except UsageError as exc:
        _report(err, f"{exc} (see flatnet-manage --help)")
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    handler = _setup_logging(getattr(args, "debug", False), err)
    try:
        return _dispatch(args, out, err)
    finally:
        logging.getLogger("flatnet").removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
