"""flatnet-manage db and config: the handlers."""

from __future__ import annotations

import argparse

from flatnet.cmd import cli, output
from flatnet.db import api as db_api


def db_sync(ctx: cli.Context, args: argparse.Namespace) -> int:
    """Create the database (the only command that may) or upgrade it."""
    db_api.sync(ctx.database(create=True))
    return 0


def db_version(ctx: cli.Context, args: argparse.Namespace) -> int:
    ctx.out.write(f"{db_api.schema_version(ctx.db) or 'None'}\n")
    return 0


def config_show(ctx: cli.Context, args: argparse.Namespace) -> int:
    """The files read, then every option, its value and its origin."""
    from flatnet import settings  # noqa: PLC0415 - reload with origins

    source = ctx.settings.source
    given = () if source.searched else source.files
    shown = settings.load(given, with_origins=True)
    rows = [(o.group, o.name, o.value, o.origin) for o in shown.options]
    data = {
        "files": list(shown.source.files),
        "found_by_default_search": shown.source.searched,
        "database": shown.database.display(),
        "notes": list(shown.notes),
        "options": [
            {"group": g, "name": n, "value": v, "origin": o}
            for g, n, v, o in rows
        ],
    }
    text = (
        f"configuration: {shown.source.describe()}\n"
        f"database: {shown.database.display()}\n"
        + "".join(f"note: {note}\n" for note in shown.notes)
        + output.table(("group", "option", "value", "set in"), rows)
    )
    return cli.write(ctx, args, text, data)
