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
            "postgresql+psycopg://..., mysql+pymysql://...).",
        ),
    ]
