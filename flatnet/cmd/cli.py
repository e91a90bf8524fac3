"""flatnet-manage's small CLI framework: parser, context, output.

Command groups register their parsers in ``manage_<group>.py``, which
import nothing heavy, so ``--help`` and a usage error cost no database
or configuration import. A subcommand names its handler as
``"<module>:<function>"`` in ``flatnet.cmd``; :func:`resolve` imports it
only when that command runs. A handler takes ``(Context,
argparse.Namespace)`` and returns the exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, TextIO, TypeAlias

if TYPE_CHECKING:
    from flatnet.db.api import Database
    from flatnet.service.manager import FlatDHCPManager
    from flatnet.settings import Settings


class UsageError(Exception):
    """argparse found bad arguments."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
HandlerFunc: TypeAlias = Callable[["Context", argparse.Namespace], int]
#: A handler, or "module:function" of one in flatnet.cmd (imported late).
Handler: TypeAlias = "HandlerFunc | str"


def resolve(handler: Handler) -> HandlerFunc:
    """The handler function (importing its module if named)."""
    if not isinstance(handler, str):
        return handler
    module, _, name = handler.partition(":")
    found: HandlerFunc = getattr(
        importlib.import_module(f"flatnet.cmd.{module}"), name
    )
    return found


@dataclasses.dataclass
class Context:
    """What a command handler needs: settings, output, lazy DB."""

    settings: Settings
    out: TextIO
    _db: Database | None = None

    def database(self, *, create: bool = False) -> Database:
        """The database (``create``: db sync may create the file)."""
        if self._db is None:
            from flatnet import wiring  # noqa: PLC0415 - per command

            self._db = wiring.database(self.settings, create=create)
        return self._db

    @property
    def db(self) -> Database:
        return self.database()

    @property
    def manager(self) -> FlatDHCPManager:
        from flatnet import wiring  # noqa: PLC0415 - per command

        return wiring.manager(self.settings, self.db)

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
    parser = sub.add_parser(
        name, parents=[common], help=help_text, description=help_text
    )
    parser.set_defaults(handler=handler)
    return parser


def actions(groups: Subparsers, name: str, help_text: str) -> Subparsers:
    group = groups.add_parser(name, help=help_text, description=help_text)
    actions = group.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    return actions


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output format (default: table)",
    )


def seconds(text: str) -> float:
    """argparse type: a finite number of seconds in (0, 3600]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 3600):
        raise argparse.ArgumentTypeError(
            f"expected seconds between 0 and 3600, got {text!r}"
        )
    return value


def write(
    ctx: Context, args: argparse.Namespace, table: str, data: object
) -> int:
    from flatnet.cmd import output  # noqa: PLC0415 - netaddr, per command

    ctx.out.write(output.to_json(data) if args.format == "json" else table)
    return 0
