"""[database] options."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "database"


def opts() -> list[cfg.Opt]:
    return [
        cfg.StrOpt(
            "connection",
            default="sqlite:///$state_path/flatnet.sqlite",
            secret=True,
            help="SQLAlchemy URL (sqlite:///..., "
            "postgresql+psycopg://..., mysql+pymysql://...). The "
            "PostgreSQL and MySQL drivers are the extras "
            "flatnet[postgresql] and flatnet[mysql].",
        ),
        cfg.FloatOpt(
            "busy_timeout",
            default=60.0,
            min=0.0,
            max=3600.0,
            help="flatnet: seconds a SQLite statement waits for a lock "
            "held by another process before it fails (the error "
            "names the processes holding the file open).",
        ),
    ]
