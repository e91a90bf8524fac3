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
from sqlalchemy.engine import URL, make_url

from flatnet import exception
from flatnet.db import faults, models, sqlite_files

LOG = logging.getLogger(__name__)

BUSY_TIMEOUT = 60.0
_WRITE = "flatnet_write"
#: Dialect -> (the driver flatnet's extra installs, the extra's name).
_EXTRAS = {
    "mysql": ("pymysql", "mysql"),
    "mariadb": ("pymysql", "mysql"),
    "postgresql": ("psycopg", "postgresql"),
}


class Database:
    """One engine plus the transaction helpers every query uses.

    ``write()`` and ``read()`` are context managers yielding a Connection
    inside a transaction that commits on success and rolls back on error;
    a lock not granted within ``busy_timeout`` seconds, a missing schema,
    a full disk or a database that cannot be opened raise a
    DatabaseError naming it (:mod:`flatnet.db.faults`).

    A SQLite file is created (mode 0600; SQLite gives its -wal and -shm
    files the same mode) only with ``create``; otherwise a missing file
    is DatabaseNotInitialised. Its directory, if created, is 0700 with
    ``private_directory``, else 0755. Raises ConfigError for a URL whose
    driver is not installed, ForeignDatabase (at the first connection)
    for a database that holds nova's schema.
    """

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        busy_timeout: float = BUSY_TIMEOUT,
        private_directory: bool = False,
    ) -> None:
        self.url = make_url(url)
        self.busy_timeout = busy_timeout
        self.name = sqlite_path(self.url) or self.url.render_as_string(
            hide_password=True
        )
        if sqlite_path(self.url):
            sqlite_files.ensure_file(
                self.name, create=create, private_directory=private_directory
            )
        self.engine = _make_engine(self.url, busy_timeout)
        self._writer = self.engine.execution_options(**{_WRITE: True})

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE)."""
        with self.translated(), self._writer.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (one consistent snapshot)."""
        with self.translated(), self.engine.begin() as conn:
            yield conn

    def translated(self) -> contextlib.AbstractContextManager[None]:
        """Name database failures by their cause (for direct engine
        use such as migrations)."""
        return faults.translated(self.name, self.busy_timeout)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)})"


def sqlite_path(url: URL) -> str | None:
    """The absolute file of a file-backed SQLite URL, else None."""
    if not url.drivername.startswith("sqlite"):
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def _create(url: URL, **kwargs: Any) -> Engine:
    """create_engine; a missing driver is a ConfigError naming the
    extra that installs it."""
    try:
        return create_engine(url, **kwargs)
    except sa_exc.NoSuchModuleError as exc:
        raise exception.ConfigError(
            reason=f"[database] connection: unknown database type "
            f"{url.drivername!r}"
        ) from exc
    except ImportError as exc:
        driver, extra = _EXTRAS.get(url.get_backend_name(), ("", ""))
        hint = (
            f"pip install 'flatnet[{extra}]' and use "
            f"{url.get_backend_name()}+{driver}://"
            if extra
            else "install it"
        )
        raise exception.ConfigError(
            reason=f"[database] connection: the {url.drivername} driver is "
            f"not installed ({exc.name or exc}): {hint}"
        ) from exc


def _make_engine(url: URL, busy_timeout: float) -> Engine:
    if not url.drivername.startswith("sqlite"):
        engine = _create(url, pool_pre_ping=True)
    elif sqlite_path(url) is None:
        engine = _create(
            url,
            poolclass=pool.StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        engine = _create(url, connect_args={"timeout": busy_timeout})
    name = sqlite_path(url) or url.render_as_string(hide_password=True)
    _refuse_nova(engine, name)
    if url.drivername.startswith("sqlite"):
        _install_sqlite_hooks(
            engine, sqlite_path(url) is not None, busy_timeout
        )
    return engine


def _refuse_nova(engine: Engine, name: str) -> None:
    @event.listens_for(engine, "first_connect")
    def _check(dbapi_conn: Any, _record: Any) -> None:
        found = faults.nova_tables(dbapi_conn, engine.dialect.name)
        if engine.dialect.name != "sqlite":
            dbapi_conn.rollback()
        if found:
            raise exception.ForeignDatabase(database=name, table=found[0])


def _install_sqlite_hooks(
    engine: Engine, file_backed: bool, busy_timeout: float
) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # NOTE: pysqlite's own transaction handling is turned off so that
        # the "begin" hook below decides how a transaction starts.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
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
    for table in models.metadata.tables.values():
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
