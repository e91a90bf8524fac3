"""The database connection: one SQLAlchemy engine per :class:`Database`.

SQLite is set up for many writer processes: WAL journal, a long
``busy_timeout``, foreign keys on, and ``BEGIN IMMEDIATE`` for every write
transaction so that the write lock is taken up front (a deferred
transaction that upgrades to a writer can fail with SQLITE_BUSY without
waiting). Reads use a plain deferred ``BEGIN``. PostgreSQL runs at READ
COMMITTED; the queries lock what they claim (``FOR UPDATE SKIP LOCKED``).

IntegrityErrors are translated into flatnet exceptions in exactly one
place, :func:`translate_errors`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    UniqueConstraint,
    create_engine,
    event,
    pool,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from flatnet import exception
from flatnet.db import models

LOG = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 60_000
_WRITE = "flatnet_write"


class Database:
    """One engine plus the transaction helpers every query uses.

    ``write()`` and ``read()`` are context managers yielding a Connection
    inside a transaction that commits on success and rolls back on error.
    """

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.engine = _make_engine(url)
        self._writer = self.engine.execution_options(**{_WRITE: True})

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE)."""
        with self._writer.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (one consistent snapshot)."""
        with self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)})"


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        engine = create_engine(
            url,
            poolclass=pool.StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        parent = os.path.dirname(os.path.abspath(database))
        os.makedirs(parent, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
    _install_sqlite_hooks(engine, file_backed=database not in ("", ":memory:"))
    return engine


def _install_sqlite_hooks(engine: Engine, file_backed: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # NOTE: pysqlite's own transaction handling is turned off so that
        # the "begin" hook below decides how a transaction starts.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if file_backed:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# --- IntegrityError translation -----------------------------------------
Context = Mapping[str, Any]
_Factory = Callable[[Context], exception.FlatnetError]


def _dup_network(field: str) -> _Factory:
    return lambda c: exception.DuplicateNetwork(
        field=field, value=c.get(field)
    )


#: "table.col,col" of each unique constraint -> the exception to raise.
_UNIQUE: dict[str, _Factory] = {
    "networks.label,deleted": _dup_network("label"),
    "networks.cidr,deleted": _dup_network("cidr"),
    "networks.bridge,deleted": _dup_network("bridge"),
    "networks.uuid": _dup_network("uuid"),
    "instances.hostname,deleted": lambda c: exception.DuplicateInstance(
        name=c.get("hostname")
    ),
    "instances.uuid": lambda c: exception.DuplicateInstance(
        name=c.get("instance_uuid")
    ),
    "virtual_interfaces.address,deleted": lambda c: exception.MacAddressInUse(
        mac=c.get("mac")
    ),
    "virtual_interfaces.instance_uuid,network_id,deleted": lambda c: (
        exception.Conflict(
            reason=f"instance already has an interface on network "
            f"{c.get('network')}"
        )
    ),
    "fixed_ips.address,deleted": lambda c: exception.FixedIpAlreadyInUse(
        address=c.get("address")
    ),
    "floating_ips.address,deleted": lambda c: (
        exception.FloatingIpAlreadyExists(address=c.get("address"))
    ),
    "floating_ips.fixed_ip_id,deleted": lambda c: exception.Conflict(
        reason=f"fixed IP {c.get('fixed_address')} already has a floating IP"
    ),
}


def _names_to_keys() -> dict[str, str]:
    """Constraint name (as PostgreSQL reports it) -> "table.cols" key."""
    names: dict[str, str] = {}
    for table in models.Base.metadata.tables.values():
        for cons in table.constraints:
            if not isinstance(cons, UniqueConstraint):
                continue
            cols = ",".join(c.name for c in cons.columns)
            if isinstance(cons.name, str):
                names[cons.name] = f"{table.name}.{cols}"
        for col in table.columns:
            if col.unique:
                names[f"{table.name}_{col.name}_key"] = (
                    f"{table.name}.{col.name}"
                )
    return names


def constraint_key(error: sa_exc.IntegrityError) -> str | None:
    """The "table.col,col" of the unique constraint that ``error`` hit."""
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return _names_to_keys().get(str(name))
    text = str(error.orig)
    prefix = "UNIQUE constraint failed: "
    if not text.startswith(prefix):
        return None
    parts = [p.strip() for p in text[len(prefix) :].split(",")]
    table = parts[0].split(".")[0]
    return table + "." + ",".join(p.split(".", 1)[1] for p in parts)


@contextlib.contextmanager
def translate_errors(**context: Any) -> Iterator[None]:
    """Turn a unique-constraint IntegrityError into a flatnet Conflict.

    ``context`` supplies the values for the message (mac, label, ...).
    Other database errors propagate unchanged.
    """
    try:
        yield
    except sa_exc.IntegrityError as exc:
        key = constraint_key(exc)
        factory = _UNIQUE.get(key) if key else None
        if factory is None:
            raise
        LOG.debug("unique constraint %s violated: %s", key, exc.orig)
        raise factory(context) from exc
