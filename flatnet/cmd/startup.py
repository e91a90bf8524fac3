"""What every flatnet command does first: the same configuration
arguments and default search, logging, and one-line error reports.

Light on purpose: nothing here imports oslo.config or the database
until :func:`load_settings` is called, after argument parsing.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from flatnet import exception
from flatnet.settings import DEFAULT_CONFIG_FILES

if TYPE_CHECKING:
    from flatnet.settings import Settings

LOG = logging.getLogger(__name__)


class GcPause:
    """Python's cyclic garbage collector off while a command starts.

    :meth:`resume` then freezes what start-up allocated (modules,
    classes, settings: nothing there is garbage), so that later
    collections do not walk it, and turns the collector back on;
    :meth:`end` unfreezes. Each step restores the state found, once.
    """

    def __init__(self) -> None:
        self._was_enabled: bool | None = None
        self._frozen = False

    def pause(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def resume(self) -> None:
        if self._was_enabled is None:
            return
        gc.freeze()
        self._frozen = True
        if self._was_enabled:
            gc.enable()
        self._was_enabled = None

    def end(self) -> None:
        self.resume()
        if self._frozen:
            gc.unfreeze()
            self._frozen = False


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config-file (repeatable) and --debug, for every command."""
    parser.add_argument(
        "--config-file",
        "--config_file",
        action="append",
        dest="config_files",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="configuration file, repeatable: later files override "
        f"earlier ones (default: {DEFAULT_CONFIG_FILES[0]})",
    )
    parser.add_argument(
        "--debug",
        "-d",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log debug messages and tracebacks to stderr",
    )


def setup_logging(
    level: int, stream: TextIO, fmt: str, logger: str = "flatnet"
) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    log = logging.getLogger(logger)
    log.addHandler(handler)
    log.setLevel(level)
    return handler


#: The log format of the long-running services (flatnet-network,
#: flatnet-metadata).
SERVICE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"


def run_service(
    args: argparse.Namespace, serve: Callable[[Settings], int]
) -> int:
    """A service's main after argument parsing: logging, settings, then
    ``serve(settings)``; a database failure is exit 1, any other
    FlatnetError (configuration) exit 2, each as one line on stderr."""
    debug = getattr(args, "debug", False)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format=SERVICE_FORMAT
    )
    try:
        return serve(load_settings(getattr(args, "config_files", None)))
    except exception.DatabaseError as exc:
        LOG.debug("database error", exc_info=True)
        report(sys.stderr, str(exc))
        return 1
    except exception.FlatnetError as exc:
        LOG.debug("start-up failed", exc_info=True)
        report(sys.stderr, str(exc))
        return 2


def load_settings(
    config_files: Sequence[str] | None, *, cached: bool = False
) -> Settings:
    """Find, read and validate the configuration (the same search for
    every command; ``cached``: through the settings cache, for
    flatnet-manage). Raises ConfigError."""
    from flatnet import settings  # noqa: PLC0415 - after argument parsing

    loaded = settings.load(list(config_files or ()), cached=cached)
    LOG.debug("configuration: %s", loaded.source.describe())
    return loaded


def one_line(text: str) -> str:
    """The first line of ``text``, with unprintable characters as ?."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return "".join(c if c.isprintable() else "?" for c in first)


def report(err: TextIO, message: str) -> None:
    err.write(f"error: {one_line(message)}\n")
