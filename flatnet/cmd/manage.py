"""flatnet-manage: the admin CLI (nova-manage's network/fixed/floating
commands, plus instance create/delete and verify/repair of host rules).

Exit codes: 0 success; 2 bad input, usage or configuration (one line
``error: ...`` on stderr, nothing changed); 1 anything else, including
NotReady from ``--wait`` and unexpected errors (one line; the traceback
goes to the log, shown with ``--debug``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from oslo_config import cfg
from sqlalchemy import exc as sa_exc

from flatnet import conf as flatnet_conf
from flatnet import exception
from flatnet.cmd import (
    cli,
    manage_floating,
    manage_instance,
    manage_network,
    manage_rules,
)

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = "/etc/flatnet/flatnet.conf"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    common = cli.Parser(add_help=False)
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
    parser = cli.Parser(
        prog="flatnet-manage",
        description="Manage flatnet networks, instances and fixed IPs.",
        parents=[common],
    )
    # NOTE: no set_defaults() here: the parents' actions are shared
    # objects, so that would also change the subcommands' defaults.
    groups = parser.add_subparsers(dest="group", metavar="GROUP")
    groups.required = True
    manage_network.add_db(groups, common)
    manage_network.add_network(groups, common)
    manage_instance.add(groups, common)
    manage_network.add_fixed(groups, common)
    manage_floating.add(groups, common)
    manage_rules.add(groups, common)
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
    ctx = cli.Context(conf=conf, out=out)
    try:
        handler: Callable[[cli.Context, argparse.Namespace], int]
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
    except cli.UsageError as exc:
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
