"""flatnet-metadata: the metadata service (nova-api-metadata's role).

``flatnet-metadata [--config-file F] [--debug]`` runs in the foreground:
it loads and validates the configuration (the same default search as
every flatnet command: /etc/flatnet/flatnet.conf), checks that the
database answers, and serves nova's metadata paths on
``metadata_listen:metadata_listen_port`` (:mod:`flatnet.service.
metadata_server`), identifying each instance by the source address of
its connection. SIGTERM or SIGINT: stop accepting, let requests in
flight finish (``[metadata] shutdown_grace``), exit 0.

Exit code 2: bad configuration, a bad vendor data file or a database
that is not flatnet's (one line ``error: ...`` on stderr); 1: the
database failed or the address cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from flatnet.cmd import startup

if TYPE_CHECKING:
    from flatnet.settings import Settings

LOG = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flatnet-metadata",
        description="The flatnet metadata service (foreground).",
    )
    startup.add_config_arguments(parser)
    return parser


def _stop_while_starting(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before the server's own handler: nothing to finish."""
    LOG.info("signal %d received while starting, exiting", signum)
    raise SystemExit(0)


def serve(settings: Settings) -> int:
    """Wire, check the database, serve until SIGTERM/SIGINT."""
    from flatnet import wiring  # noqa: PLC0415
    from flatnet.service import metadata_server  # noqa: PLC0415

    try:
        service = wiring.metadata_service(settings)
        LOG.info("configuration: %s", settings.source.describe())
        try:
            service.generation()  # missing schema, nova's database: now
            return metadata_server.serve(
                service.settings, service.lookup, service.generation
            )
        finally:
            service.db.dispose()
    except OSError as exc:  # the listening address (in use, not ours)
        LOG.debug("cannot listen", exc_info=True)
        startup.report(sys.stderr, f"cannot listen: {exc}")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(
        list(sys.argv[1:] if argv is None else argv)
    )
    signal.signal(signal.SIGTERM, _stop_while_starting)
    return startup.run_service(args, serve)


if __name__ == "__main__":
    sys.exit(main())
