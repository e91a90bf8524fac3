"""flatnet-dhcpbridge: dnsmasq's --dhcp-script (nova bin/nova-dhcpbridge).

``flatnet-dhcpbridge add|old|del <mac> <ip> [<hostname>]`` appends one
validated event line to the network's journal and exits (the daemon
ingests it); ``flatnet-dhcpbridge init`` prints the leases of
``$NETWORK_ID`` in dnsmasq's lease-file format. Any other action is
ignored. The client's host name is never used (attacker controlled).

Environment (set by the ``env`` prefix of dnsmasq's command line):
``CONFIG_FILE`` (JSON list of config files), ``NETWORK_ID``, and with
the fast path ``FLATNET_EVENTS`` (the journal). Without FLATNET_EVENTS
the journal is found from the network's bridge in the database.

The database is used only if the config files set ``[database]
connection`` (a hook never falls back to the default path), and an
SQLite file must already exist: the hook refuses, in one line, rather
than create an empty database. A record that cannot be written (disk
full) is counted in the journal's loss file (exit 1), as the sh hook
does; the daemon recovers it.

This module stays import-light: oslo.config and the database are
imported only when needed. It never raises: bad input is reported on
stderr in one line (dnsmasq logs it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from flatnet import exception

if TYPE_CHECKING:
    from flatnet.db.api import Database
    from flatnet.settings import Settings

EVENT_ACTIONS = ("add", "old", "del")
_USAGE = "usage: flatnet-dhcpbridge add|old|del MAC IP [HOSTNAME] | init"


def _say(message: str) -> None:
    sys.stderr.write(f"flatnet-dhcpbridge: {message[:300]}\n")


def _config(env: Mapping[str, str]) -> Settings:
    """The validated settings of $CONFIG_FILE (an empty list: the
    default search). Raises ValueError/KeyError, ConfigError."""
    from flatnet import settings  # noqa: PLC0415 - keep the hook light

    files = json.loads(env["CONFIG_FILE"])
    if not isinstance(files, list) or not all(
        isinstance(f, str) for f in files
    ):
        raise ValueError("CONFIG_FILE must be a JSON list of paths")
    loaded = settings.load(files, with_origins=True)
    if not any(
        o.group == "database"
        and o.name == "connection"
        and o.origin != "default"
        for o in loaded.options
    ):
        raise ValueError(
            "no [database] connection in the config files of "
            "$CONFIG_FILE; refusing to use a default database"
        )
    return loaded


def _database(settings: Settings) -> Database:
    """The configured database; never creates one (a missing SQLite
    file is refused)."""
    from flatnet import wiring  # noqa: PLC0415

    return wiring.database(settings)


def _network_id(env: Mapping[str, str]) -> int:
    value = env.get("NETWORK_ID", "")
    if not value.isdigit():
        raise ValueError("Environment variable 'NETWORK_ID' must be set.")
    return int(value)


def _events_path(env: Mapping[str, str]) -> str:
    """The journal: $FLATNET_EVENTS, else from networks_path + bridge."""
    path = env.get("FLATNET_EVENTS", "")
    if (
        path.startswith("/")
        and path.endswith(".events")
        and ("\n" not in path)
    ):
        return path
    from flatnet.db import api as db_api  # noqa: PLC0415
    from flatnet.plan import dnsmasq as plan  # noqa: PLC0415

    settings = _config(env)
    db = _database(settings)
    network = db_api.network_get(db, str(_network_id(env)))
    return plan.dnsmasq_paths(
        settings.dhcp.networks_path, network.bridge
    ).events


def _event(args: Sequence[str], env: Mapping[str, str]) -> int:
    from flatnet.service import lease_events as leases  # noqa: PLC0415

    if len(args) < 3:
        _say(f"ignoring {args[0]} without MAC and IP")
        return 0
    event = leases.parse_event(args[0], args[1], args[2])
    if event is None:
        _say(f"ignoring invalid {args[0]} event {args[1:3]!r}")
        return 0
    path = _events_path(env)
    try:
        leases.record_event(path, event)
    except OSError as exc:
        _count_lost(path)
        _say(f"{args[0]} event not journaled, counted as lost: {exc}")
        return 1
    return 0


def _count_lost(events_path: str) -> None:
    from flatnet.linux import journal  # noqa: PLC0415

    try:
        journal.count_lost(journal.loss_path(events_path))
    except OSError as exc:
        _say(f"cannot count the lost event either: {exc}")


def _init(env: Mapping[str, str]) -> int:
    from flatnet.service import leases  # noqa: PLC0415

    network_id = _network_id(env)
    settings = _config(env)
    text = leases.init_text(
        _database(settings),
        network_id,
        settings.dhcp.dhcp_lease_time,
        int(time.time()),
    )
    sys.stdout.write(text)
    return 0


def run(args: Sequence[str], env: Mapping[str, str]) -> int:
    """Handle one hook call; the exit status for dnsmasq."""
    action = args[0] if args else ""
    if action in EVENT_ACTIONS:
        return _event(args, env)
    if action == "init":
        return _init(env)
    if action in ("", "-h", "--help"):
        _say(_USAGE)
        return 2
    return 0  # tftp, arp, ...: nothing to do


def main_with(args: Sequence[str], env: Mapping[str, str]) -> int:
    """:func:`run` that never raises: errors become one stderr line."""
    args = list(args)
    try:
        return run(args, env)
    except exception.ConfigError as exc:
        _say(str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - the hook must not crash
        _say(f"{args[:1]!r} failed: {type(exc).__name__}: {exc}")
        return 1 if args[:1] == ["init"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point; never raises."""
    return main_with(sys.argv[1:] if argv is None else argv, os.environ)
