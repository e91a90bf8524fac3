"""flatnet-network: the network host daemon (nova-network's role).

``flatnet-network [--config-file F] [--once] [--debug]`` runs in the
foreground: it loads and validates the configuration (the same default
search as every flatnet command: /etc/flatnet/flatnet.conf), logs on
stderr which files it read, wires the real executors
(:func:`flatnet.wiring.network_host`) and runs the daemon until
SIGTERM/SIGINT. dnsmasq processes are left running on exit; the next
start adopts them.

``--once`` reconciles every network once and exits: 0 if the host is
live for every network and component (``host_state`` has reached each
network's generation), 1 otherwise.

Exit code 2: bad configuration or a database that is not flatnet's
(one line ``error: ...`` on stderr); 1: the database failed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from flatnet.cmd import startup

if TYPE_CHECKING:
    from flatnet.service.daemon import Daemon
    from flatnet.service.wake import Waker
    from flatnet.settings import Settings

LOG = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flatnet-network",
        description="The flatnet network host service (foreground).",
    )
    startup.add_config_arguments(parser)
    parser.add_argument(
        "--once",
        action="store_true",
        help="reconcile every network once, then exit (0 if all live)",
    )
    return parser


def _stop_on_signals(stop: threading.Event, wake: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        LOG.info("signal %d received, stopping", signum)
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_once(service: Daemon) -> int:
    """``--once``: prepare, one loop iteration; 0 if all live."""

    for rec in service.reconcilers:
        rec.prepare()
    try:
        service.run_once()
    finally:
        for rec in service.reconcilers:
            rec.close()
    lagging = service.lagging()
    for (component, key), reason in sorted(lagging.items()):
        LOG.warning("%s of %s is not live: %s", component, key, reason)
    return 1 if lagging else 0


def _start(settings: Settings) -> Daemon:
    """The wired daemon, after checking that its database answers
    (missing schema, nova's database: one line now, not a loop of
    tracebacks)."""
    from flatnet import wiring  # noqa: PLC0415
    from flatnet.db import api as db_api  # noqa: PLC0415

    LOG.info("configuration: %s", settings.source.describe())
    for note in settings.notes:
        LOG.warning("%s", note)
    service = wiring.network_host(settings)
    db_api.network_generations(service.db)
    return service


def serve(settings: Settings, once: bool) -> int:
    service = _start(settings)
    if once:
        return run_once(service)
    stop, wake = threading.Event(), threading.Event()
    _stop_on_signals(stop, wake)
    waker = _waker(settings, wake)
    LOG.info("flatnet-network starting on host %s", settings.host)
    try:
        service.run(stop, wake)
    finally:
        if waker is not None:
            waker.close()
    LOG.info("flatnet-network stopped")
    return 0


def _waker(settings: Settings, wake: threading.Event) -> Waker | None:
    """The wake socket in state_path; without it (unwritable, another
    daemon's) the loop only polls."""
    from flatnet.service.wake import Waker, path_in  # noqa: PLC0415

    path = path_in(settings.state_path)
    try:
        return Waker(path, wake)
    except OSError as exc:
        LOG.warning("no wake socket %s (%s): polling only", path, exc)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(
        list(sys.argv[1:] if argv is None else argv)
    )
    return startup.run_service(args, lambda s: serve(s, args.once))


if __name__ == "__main__":
    sys.exit(main())
