"""flatnet-manage's small CLI framework: parser, context, output.

Command groups live in ``manage_<group>.py``; each has an ``add(groups,
common)`` that registers its subcommands with handlers taking
``(Context, argparse.Namespace)`` and returning the exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import NoReturn, TextIO, TypeAlias

from oslo_config import cfg
from sqlalchemy import exc as sa_exc

from flatnet import exception
from flatnet.cmd import output
from flatnet.db import api as db_api
from flatnet.service import manager


class UsageError(Exception):
    """argparse found bad arguments."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
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


def leaf(
    sub: Subparsers,
    common: Parser,
    name: str,
    handler: Handler,
    help_text: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, parents=[common], help=help_text)
    parser.set_defaults(handler=handler)
    return parser


def actions(groups: Subparsers, name: str, help_text: str) -> Subparsers:
    group = groups.add_parser(name, help=help_text)
    actions = group.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    return actions


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output format",
    )


def write(
    ctx: Context, args: argparse.Namespace, table: str, data: object
) -> int:
    ctx.out.write(output.to_json(data) if args.format == "json" else table)
    return 0
