"""The database's failures, named by their real cause (one place).

:func:`translated` wraps every transaction of
:class:`flatnet.db.engine.Database`: a lock that was not granted in
time, a missing schema, a full disk or a database that cannot be opened
becomes a :class:`~flatnet.exception.DatabaseError` subclass naming the
database (and, for a full disk, the directory). Every other error
propagates unchanged (IntegrityErrors are translated by
:func:`flatnet.db.engine.translate_errors`).

:func:`nova_tables` recognises nova's own database, which flatnet must
never migrate or write (a nova.conf loaded as it is points at it).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from sqlalchemy import exc as sa_exc

from flatnet import exception

LOG = logging.getLogger(__name__)

#: Tables of nova's main database that a flatnet database never has.
NOVA_TABLES = ("compute_nodes", "block_device_mapping", "services")

# PostgreSQL SQLSTATEs (Appendix A of its manual): undefined_table,
# lock_not_available, query_canceled (lock_timeout), disk_full.
_PG = {"42P01": "missing", "55P03": "locked", "57014": "locked",
       "53100": "full"}  # fmt: skip
# MySQL/MariaDB error numbers: ER_NO_SUCH_TABLE, ER_LOCK_WAIT_TIMEOUT,
# ER_DISK_FULL, ER_RECORD_FILE_FULL.
_MYSQL = {1146: "missing", 1205: "locked", 1021: "full", 1114: "full"}


def _kind(orig: Any) -> str | None:
    """ "locked", "missing", "full", "unavailable" or None (other)."""
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return _sqlite_kind(name, str(orig))
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        default = "unavailable" if state.startswith("08") else None
        return _PG.get(state, default)
    code = orig.args[0] if getattr(orig, "args", None) else None
    return _MYSQL.get(code) if isinstance(code, int) else None


def _sqlite_kind(name: str, text: str) -> str | None:
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED") or name.startswith(
        "SQLITE_BUSY_"
    ):
        return "locked"
    if name == "SQLITE_FULL":
        return "full"
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")):
        return "unavailable"
    if name == "SQLITE_ERROR" and text.startswith("no such table"):
        return "missing"
    return None


def _first_line(orig: Any) -> str:
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def translate(
    exc: sa_exc.DBAPIError, database: str, busy_timeout: float
) -> exception.DatabaseError | None:
    """The flatnet error for ``exc``, None when it is none of ours.

    ``database`` names the database (the SQLite path or the URL without
    its password).
    """
    if isinstance(exc, sa_exc.IntegrityError):
        return None
    orig = exc.orig
    kind = _kind(orig)
    if kind is None and isinstance(exc, sa_exc.OperationalError):
        kind = "unavailable" if exc.connection_invalidated else None
    if kind == "locked":
        return exception.DatabaseLocked(
            database=database, seconds=f"{busy_timeout:g}"
        )
    if kind == "missing":
        return exception.DatabaseNotInitialised(
            database=database, reason=_first_line(orig)
        )
    if kind == "full":
        path = os.path.dirname(database) if database.startswith("/") else "?"
        return exception.DatabaseFull(database=database, path=path)
    if kind == "unavailable":
        return exception.DatabaseUnavailable(
            database=database, reason=_first_line(orig)
        )
    return None


@contextlib.contextmanager
def translated(database: str, busy_timeout: float) -> Iterator[None]:
    """Raise :func:`translate`'s error for a database failure."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        error = translate(exc, database, busy_timeout)
        if error is None:
            raise
        LOG.debug("database error: %s", exc.orig)
        raise error from exc


def nova_tables(dbapi_conn: Any, dialect: str) -> list[str]:
    """Which of :data:`NOVA_TABLES` the connected database has."""
    marks = ", ".join(f"'{t}'" for t in NOVA_TABLES)
    if dialect == "sqlite":
        sql = (
            "SELECT name FROM sqlite_master WHERE type = 'table' "  # noqa: S608
            f"AND name IN ({marks})"
        )
    else:
        schema = "DATABASE()" if dialect in ("mysql", "mariadb") else (
            "current_schema()"
        )  # fmt: skip
        sql = (
            "SELECT table_name FROM information_schema.tables "  # noqa: S608
            f"WHERE table_schema = {schema} AND table_name IN ({marks})"
        )
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql)
        return sorted(str(row[0]) for row in cursor.fetchall())
    finally:
        cursor.close()
