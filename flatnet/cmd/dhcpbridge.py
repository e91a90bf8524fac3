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

if TYPE_CHECKING:
    from oslo_config import cfg

    from flatnet.db import api as db_api

EVENT_ACTIONS = ("add", "old", "del")
_USAGE = "usage: flatnet-dhcpbridge add|old|del MAC IP [HOSTNAME] | init"


def _say(message: str) -> None:
    sys.stderr.write(f"flatnet-dhcpbridge: {message[:300]}\n")


def _config(env: Mapping[str, str]) -> cfg.ConfigOpts:
    """Parsed oslo.config from $CONFIG_FILE. Raises ValueError/KeyError."""
    from flatnet import conf  # noqa: PLC0415 - keep the hook light

    files = json.loads(env["CONFIG_FILE"])
    if not isinstance(files, list) or not all(
        isinstance(f, str) for f in files
    ):
        raise ValueError("CONFIG_FILE must be a JSON list of paths")
    return conf.parse([], default_config_files=files)


def _database(conf: cfg.ConfigOpts) -> db_api.Database:
    """The configured database. Raises ValueError if no config file sets
    ``[database] connection`` or its SQLite file does not exist."""
    from oslo_config import cfg as oslo_cfg  # noqa: PLC0415
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    from flatnet.db import api as db_api  # noqa: PLC0415

    where = conf.get_location("connection", "database")
    defaults = (oslo_cfg.Locations.opt_default, oslo_cfg.Locations.set_default)
    if where is None or where.location in defaults:
        raise ValueError(
            "no [database] connection in the config files of "
            "$CONFIG_FILE; refusing to use a default database"
        )
    url = make_url(conf.database.connection)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if not path or not os.path.isfile(path):
            raise ValueError(f"database {path or ':memory:'} does not exist")
    return db_api.Database(conf.database.connection)


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

    cfg = _config(env)
    db = _database(cfg)
    network = db_api.network_get(db, str(_network_id(env)))
    networks_path = os.path.abspath(cfg.networks_path)
    return plan.dnsmasq_paths(networks_path, network.bridge).events


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
    cfg = _config(env)
    db = _database(cfg)
    text = leases.init_text(
        db, network_id, cfg.dhcp_lease_time, int(time.time())
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
    except Exception as exc:  # noqa: BLE001 - the hook must not crash
        _say(f"{args[:1]!r} failed: {type(exc).__name__}: {exc}")
        return 1 if args[:1] == ["init"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point; never raises."""
    return main_with(sys.argv[1:] if argv is None else argv, os.environ)
