"""flatnet-manage: the admin CLI (nova-manage's network/fixed/floating
commands, plus instance create/delete and verify/repair of host rules).

Exit codes: 0 success; 2 bad input, usage or configuration (one line
``error: ...`` on stderr, nothing changed); 1 anything else: NotReady
from ``--wait``, a database that failed (locked, full, not set up) and
unexpected errors (one line; the traceback goes to the log, shown with
``--debug``).

The parser is built from light modules only; the configuration, the
database and each command's own imports are loaded after parsing, so
``--help`` costs no more than Python's start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from flatnet import exception
from flatnet.cmd import (
    cli,
    manage_floating,
    manage_instance,
    manage_migration,
    manage_network,
    manage_rules,
    manage_secgroup,
    startup,
)

if TYPE_CHECKING:
    from flatnet.settings import Settings

LOG = logging.getLogger(__name__)
#: The cyclic garbage collector is off while the command starts
#: (imports, parsing, settings): ~106 collections there freed ~1,000
#: objects and cost ~10 % of ``network list``'s instructions
#: (doc/benchmarks.md).
_GC = startup.GcPause()


Adder = Callable[[cli.Subparsers, cli.Parser], None]
#: Who registers each top-level word (in --help order), with the help
#: texts of the words: a word not on the command line is listed with its
#: help only, so a command does not pay for every other command's parser.
_ADDERS: tuple[tuple[Adder, Mapping[str, str]], ...] = (
    (manage_network.add_db, {"db": manage_network.HELP["db"]}),
    (manage_network.add_config, {"config": manage_network.HELP["config"]}),
    (manage_network.add_network, {"network": manage_network.HELP["network"]}),
    (manage_instance.add, manage_instance.HELP),
    (manage_network.add_fixed, {"fixed": manage_network.HELP["fixed"]}),
    (manage_floating.add, manage_floating.HELP),
    (manage_rules.add, manage_rules.HELP),
    (manage_migration.add, manage_migration.HELP),
    (manage_secgroup.add, manage_secgroup.HELP),
)
_CONFIG_FLAGS = ("--config-file", "--config_file")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: in full, or with only the word ``only``
    (e.g. ``network``) built in full and the others listed by name."""
    common = cli.Parser(add_help=False)
    startup.add_config_arguments(common)
    parser = cli.Parser(
        prog="flatnet-manage",
        description="Manage flatnet networks, instances and fixed IPs.",
        parents=[common],
    )
    # NOTE: no set_defaults() here: the parents' actions are shared
    # objects, so that would also change the subcommands' defaults.
    groups = parser.add_subparsers(dest="group", metavar="GROUP")
    groups.required = True
    for add, words in _ADDERS:
        if only is None or only in words:
            add(groups, common)
            continue
        for word, help_text in words.items():  # no --help: see parse_args
            groups.add_parser(word, help=help_text, add_help=False)
    return parser


def _word(argv: Sequence[str]) -> str:
    """The command's top-level word (not checked: argparse does that)."""
    skip = False
    for arg in argv:
        if skip or arg == "--":
            skip = False
            continue
        skip = arg in _CONFIG_FLAGS
        if not arg.startswith("-"):
            return arg
    return ""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed by a parser built for its word only. If that
    fails or lands on a word listed by name only (an abbreviated
    --config-file hid the word), the full parser parses it again and
    gives the answer (the usage error, the help)."""
    try:
        args = build_parser(only=_word(argv)).parse_args(argv)
    except cli.UsageError:
        args = None
    if args is None or not hasattr(args, "handler"):
        args = build_parser().parse_args(argv)
    return args


def _database_error(settings: Settings | None, exc: Exception) -> str:
    """A database error with who holds the file and which option set
    the database."""
    message = str(exc)
    if settings is None:
        return message
    if isinstance(exc, exception.DatabaseLocked):
        from flatnet.linux import open_files  # noqa: PLC0415 - error path only

        path = str(exc.kwargs.get("database", ""))
        holders = open_files.open_by([path + s for s in ("", "-wal", "-shm")])
        if holders:
            message += "; open in " + ", ".join(
                f"pid {pid} ({command})" for pid, command in holders[:3]
            )
    origin = settings.database.origin
    if origin == "default":
        files = ", ".join(settings.source.files)
        return (
            f"{message} ([database] connection: the default, not set in "
            f"{files})"
        )
    return f"{message} ([database] connection set in {origin})"


def _run(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    ctx = cli.Context(settings=settings, out=out)
    try:
        handler = cli.resolve(args.handler)
        _GC.resume()  # start-up done: the command's own work is collected
        return handler(ctx, args)
    finally:
        ctx.close()


def _is_dbapi_error(exc: Exception) -> bool:
    module = sys.modules.get("sqlalchemy.exc")
    return module is not None and isinstance(exc, module.DBAPIError)


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = None
    try:
        settings = startup.load_settings(
            getattr(args, "config_files", None), cached=True
        )
        return _run(settings, args, out)
    except exception.NotReady as exc:
        startup.report(err, str(exc))
        return 1
    except (exception.DatabaseError, exception.ForeignDatabase) as exc:
        LOG.debug("database error", exc_info=True)
        startup.report(err, _database_error(settings, exc))
        return 1 if isinstance(exc, exception.DatabaseError) else 2
    except exception.FlatnetError as exc:
        LOG.debug("command failed", exc_info=True)
        startup.report(err, str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI's last resort
        LOG.debug("unexpected error", exc_info=True)
        if _is_dbapi_error(exc):
            orig = getattr(exc, "orig", exc)
            startup.report(err, f"database error: {orig}")
        else:
            startup.report(err, f"unexpected {type(exc).__name__}: {exc}")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run flatnet-manage with ``argv`` (default sys.argv[1:])."""
    out, err = sys.stdout, sys.stderr
    _GC.pause()
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), out, err)
    finally:
        _GC.end()


def _main(argv: list[str], out: TextIO, err: TextIO) -> int:
    try:
        args = parse_args(argv)
    except cli.UsageError as exc:
        startup.report(err, f"{exc} (see flatnet-manage --help)")
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    debug = getattr(args, "debug", False)
    handler = startup.setup_logging(
        logging.DEBUG if debug else logging.WARNING,
        err,
        "%(levelname)s %(name)s: %(message)s",
    )
    try:
        return _dispatch(args, out, err)
    finally:
        logging.getLogger("flatnet").removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
