"""Read a nova-network database for ``flatnet-manage import nova``.

Read-only: one transaction (a consistent snapshot; REPEATABLE READ on
PostgreSQL, InnoDB's default on MySQL) selects the rows of the tables
flatnet imports and counts those it does not. Nothing is ever written
to nova's database, and a SQLite file that does not exist is refused
rather than created.

Which databases are accepted (one-line InvalidInput otherwise):

* sqlalchemy-migrate's ``migrate_version`` row for repository ``nova``
  (``nova/db/sqlalchemy/migrate_repo/migrate.cfg``) at a version in
  :data:`KNOWN_VERSIONS`: 334 (the last migration of nova 14.0.0,
  Newton) to 402 (20.0.0, Train, the last release with nova-network
  code). The nova-network tables are identical across that range
  (``nova/db/sqlalchemy/models.py`` at 14.0.0, 16.0.0 and 20.0.0; the
  last change, ``virtual_interfaces.tag``, is migration 331);
* every column in :data:`COLUMNS` present in its table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnClause,
    Connection,
    DateTime,
    Engine,
    column,
    create_engine,
    func,
    inspect,
    select,
    table,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from flatnet import exception

KNOWN_VERSIONS = range(334, 403)
REPOSITORY = "nova"
_STAMPS = ("created_at", "updated_at", "deleted_at", "deleted")

#: table -> the columns flatnet reads (all must exist).
COLUMNS: dict[str, tuple[str, ...]] = {
    "networks": (
        "id", "uuid", "label", "injected", "cidr", "cidr_v6", "multi_host",
        "gateway_v6", "netmask_v6", "netmask", "gateway", "broadcast",
        "dns1", "dns2", "bridge", "bridge_interface", "vlan", "dhcp_start",
        "rxtx_base", "project_id", "priority", "host", "mtu",
        "dhcp_server", "enable_dhcp", "share_address", *_STAMPS,
    ),
    "instances": (
        "id", "uuid", "hostname", "display_name", "host", "launched_on",
        "project_id", "user_id", "availability_zone", *_STAMPS,
    ),
    "virtual_interfaces": (
        "id", "address", "network_id", "instance_uuid", "uuid", "tag",
        *_STAMPS,
    ),
    "fixed_ips": (
        "id", "address", "network_id", "virtual_interface_id",
        "instance_uuid", "allocated", "leased", "reserved", "host",
        *_STAMPS,
    ),
    "floating_ips": (
        "id", "address", "fixed_ip_id", "project_id", "host",
        "auto_assigned", "pool", "interface", *_STAMPS,
    ),
    "security_groups": (
        "id", "name", "description", "user_id", "project_id", *_STAMPS,
    ),
    "security_group_rules": (
        "id", "parent_group_id", "protocol", "from_port", "to_port", "cidr",
        "group_id", *_STAMPS,
    ),
    "security_group_instance_association": (
        "id", "security_group_id", "instance_uuid", *_STAMPS,
    ),
}  # fmt: skip

#: tables flatnet does not import; their live rows are counted.
COUNTED = (
    "security_group_default_rules",
    "provider_fw_rules",
    "dns_domains",
)


_BOOL = Boolean()
_BOOLEANS = frozenset(
    {"injected", "multi_host", "enable_dhcp", "share_address", "allocated",
     "leased", "reserved", "auto_assigned"}
)  # fmt: skip


def _typed(name: str) -> ColumnClause[Any]:
    """nova's column with the type that decodes it (SQLite stores
    booleans as integers and timestamps as text)."""
    if name in _BOOLEANS:
        return column(name, _BOOL)
    if name in ("created_at", "updated_at", "deleted_at"):
        return column(name, DateTime())
    return column(name)


@dataclasses.dataclass(frozen=True)
class NovaRows:
    """What was read: nova's schema version, the rows of the imported
    tables (dicts keyed by nova's column names, every row, soft-deleted
    ones too) and the live-row count of each table in :data:`COUNTED`
    that exists."""

    version: int
    rows: dict[str, list[dict[str, Any]]]
    counted: dict[str, int]


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _bad(url: URL, reason: str) -> exception.InvalidInput:
    return exception.InvalidInput(
        reason=f"nova database {_safe(url)}: {reason}"
    )


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _engine(url: URL) -> Engine:
    if url.drivername.startswith("sqlite"):
        path = url.database or ""
        if path in ("", ":memory:") or not os.path.isfile(path):
            raise _bad(url, "no such SQLite file")
        url = url.set(
            database=f"file:{os.path.abspath(path)}",
            query={"mode": "ro", "uri": "true"},
        )
    try:
        return create_engine(url)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as exc:
        raise _bad(url, _first_line(exc)) from exc
    except ImportError as exc:
        raise _bad(url, f"database driver not installed ({exc.name})") from exc


def _version(conn: Connection, url: URL, tables: set[str]) -> int:
    if "migrate_version" not in tables:
        raise _bad(url, "not a nova database (no migrate_version table)")
    versions = table(
        "migrate_version", column("repository_id"), column("version")
    )
    found: dict[Any, Any] = dict(conn.execute(select(versions)).all())
    if REPOSITORY not in found:
        repos = ", ".join(sorted(map(str, found))) or "none"
        raise _bad(
            url, f"not nova's main database (migrate_version has {repos})"
        )
    version = int(found[REPOSITORY])
    if version not in KNOWN_VERSIONS:
        raise _bad(
            url,
            f"nova schema version {version} is not one flatnet knows "
            f"({KNOWN_VERSIONS.start}-{KNOWN_VERSIONS.stop - 1}: "
            "nova 14.0.0 to 20.0.0)",
        )
    return version


def _check_columns(conn: Connection, url: URL, tables: set[str]) -> None:
    inspector = inspect(conn)
    for name, wanted in COLUMNS.items():
        if name not in tables:
            raise _bad(url, f"not a nova database (no {name} table)")
        have = {c["name"] for c in inspector.get_columns(name)}
        missing = [c for c in wanted if c not in have]
        if missing:
            raise _bad(
                url,
                f"table {name} lacks column(s) {', '.join(missing)}: "
                "not the nova-network schema flatnet knows",
            )


def _read(conn: Connection, url: URL) -> NovaRows:
    tables = set(inspect(conn).get_table_names())
    version = _version(conn, url, tables)
    _check_columns(conn, url, tables)
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, cols in COLUMNS.items():
        query = select(*(_typed(c) for c in cols)).select_from(table(name))
        query = query.order_by(column("id"))
        rows[name] = [dict(r) for r in conn.execute(query).mappings()]
    counted = {}
    for name in COUNTED:
        if name in tables:
            live = select(func.count()).select_from(table(name))
            deleted = column(
                "deleted", _BOOL if name == "dns_domains" else None
            )
            live = live.where(
                deleted == (False if name == "dns_domains" else 0)
            )
            counted[name] = int(conn.execute(live).scalar() or 0)
    return NovaRows(version=version, rows=rows, counted=counted)


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    options: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    with engine.connect().execution_options(**options) as conn:
        with conn.begin():
            yield conn


def read_nova(url_text: str) -> NovaRows:
    """Read nova's rows from the database at ``url_text``.

    Raises InvalidInput (one line, password hidden) when the URL is bad,
    the database is unreachable, is not nova's main database, or has a
    schema version or columns flatnet does not know.
    """
    try:
        url = make_url(url_text)
    except sa_exc.ArgumentError as exc:
        raise exception.InvalidInput(
            reason=f"{url_text!r} is not a database URL"
        ) from exc
    engine = _engine(url)
    try:
        with _snapshot(engine) as conn:
            return _read(conn, url)
    except sa_exc.DBAPIError as exc:
        raise _bad(url, f"cannot read it: {_first_line(exc)}") from exc
    finally:
        engine.dispose()
