"""Write imported nova rows into flatnet's database, all or nothing.

:func:`apply_import` runs ONE write transaction over flatnet's existing
tables (:mod:`flatnet.db.rows`) in foreign-key order. Each row keeps
nova's primary key:

* a row whose id is not in flatnet's table is inserted (bulk);
* a row whose id is there with equal values is left alone, so a second
  import of the same nova database changes nothing;
* a row whose id is there with other values, or whose natural key
  (network label/cidr/bridge/uuid, instance uuid or live host name, VIF
  MAC or uuid, fixed or floating address, a group's project and name, a
  membership's group and instance) belongs to another flatnet row,
  raises Conflict naming both, and the transaction rolls back.

New networks get generation 1 (the daemon picks them up), the rules
counter is bumped when floating IPs arrive and the ``firewall`` counter
when security-group rows do, in the same transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import netaddr
from sqlalchemy import Connection, Table, insert, inspect, select, text
from sqlalchemy import exc as sa_exc

from flatnet import exception, ipam
from flatnet.db import models, rows, secgroups
from flatnet.db.engine import Database

LOG = logging.getLogger(__name__)

TABLES: dict[str, Table] = {
    "networks": rows.NETWORKS,
    "instances": rows.INSTANCES,
    "virtual_interfaces": rows.VIFS,
    "fixed_ips": rows.FIXED,
    "floating_ips": rows.FLOATING,
    "security_groups": models.SECURITY_GROUPS,
    "security_group_rules": models.SECURITY_GROUP_RULES,
    "security_group_instance_association": models.SECURITY_GROUP_INSTANCES,
}
#: Unique keys of several columns (live rows only), checked before
#: inserting: nova's and flatnet's ``uniq_security_groups0project_id0
#: name0deleted`` and ``uniq_sgia0group0instance0deleted``.
COMPOSITE_KEYS: dict[str, tuple[str, str]] = {
    "security_groups": ("project_id", "name"),
    "security_group_instance_association": (
        "security_group_id",
        "instance_uuid",
    ),
}


def _firewall_stamps(
    inserted: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[set[str], set[int]]:
    """The instances and groups an import changed, for the firewall
    change log (:func:`flatnet.db.secgroups.bump`)."""
    uuids = {
        r["instance_uuid"]
        for t in ("security_group_instance_association", "fixed_ips")
        for r in inserted.get(t, ())
        if r.get("instance_uuid")
    }
    uuids |= {r["uuid"] for r in inserted.get("instances", ())}
    groups = {
        r["parent_group_id"] for r in inserted.get("security_group_rules", ())
    }
    return uuids, groups


FIREWALL_TABLES = (
    "security_groups",
    "security_group_rules",
    "security_group_instance_association",
)
#: Unique keys checked before inserting: (columns, live rows only).
NATURAL_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {
    "networks": (("label", True), ("cidr", True), ("bridge", True),
                 ("uuid", False)),
    "instances": (("uuid", False), ("hostname", True)),
    "virtual_interfaces": (("address", True), ("uuid", False)),
    "fixed_ips": (("address", True),),
    "floating_ips": (("address", True),),
    "security_groups": (),
    "security_group_rules": (),
    "security_group_instance_association": (),
}  # fmt: skip
CHUNK = 2000
Progress = Callable[[int], None]


@dataclasses.dataclass(frozen=True)
class TableResult:
    inserted: int
    unchanged: int


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _existing(
    conn: Connection, table: Table, column: str, values: Sequence[Any]
) -> dict[Any, Any]:
    """flatnet rows whose ``column`` is one of ``values``, keyed by it."""
    found: dict[Any, Any] = {}
    col = table.c[column]
    for chunk in _chunks(sorted(set(values), key=str)):
        for row in conn.execute(select(table).where(col.in_(chunk))):
            found.setdefault(row._mapping[column], row._mapping)
    return found


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: flatnet {old[key]!r}, nova {value!r}"
        for key, value in new.items()
        if old[key] != value
    ]


def _split(
    conn: Connection, name: str, wanted: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The rows to insert; Conflict if an id holds other values."""
    existing = _existing(conn, TABLES[name], "id", [r["id"] for r in wanted])
    new = []
    for row in wanted:
        old = existing.get(row["id"])
        if old is None:
            new.append(row)
            continue
        diff = _differences(old, row)
        if diff:
            raise exception.Conflict(
                reason=f"{name} id {row['id']} is already in flatnet's "
                f"database with other values ({diff[0]}); import into an "
                "empty flatnet database"
            )
    return new


def _check_keys(
    conn: Connection, name: str, new: Sequence[Mapping[str, Any]]
) -> None:
    table = TABLES[name]
    for column, live_only in NATURAL_KEYS[name]:
        keyed = {r[column]: r for r in new if not (live_only and r["deleted"])}
        for value, old in _existing(conn, table, column, list(keyed)).items():
            if live_only and old["deleted"]:
                continue
            raise exception.Conflict(
                reason=f"{name}: {column} {value!r} of nova id "
                f"{keyed[value]['id']} is already used by flatnet id "
                f"{old['id']}; import into an empty flatnet database"
            )


def _check_composite(
    conn: Connection, name: str, new: Sequence[Mapping[str, Any]]
) -> None:
    if name not in COMPOSITE_KEYS or not new:
        return
    first, second = COMPOSITE_KEYS[name]
    table = TABLES[name]
    keyed = {(r[first], r[second]): r for r in new if not r["deleted"]}
    for chunk in _chunks(sorted({k[0] for k in keyed}, key=str)):
        query = select(table).where(
            table.c[first].in_(chunk), table.c.deleted == 0
        )
        for old in conn.execute(query).mappings():
            row = keyed.get((old[first], old[second]))
            if row is not None:
                raise exception.Conflict(
                    reason=f"{name}: {first} {old[first]!r} with {second} "
                    f"{old[second]!r} of nova id {row['id']} is already "
                    f"used by flatnet id {old['id']}; import into an "
                    "empty flatnet database"
                )


def _check_overlap(conn: Connection, new: Sequence[Mapping[str, Any]]) -> None:
    live = conn.execute(
        select(rows.NETWORKS.c.cidr).where(rows.NETWORKS.c.deleted == 0)
    ).scalars()
    existing = [netaddr.IPNetwork(c) for c in live]
    for row in new:
        ipam.check_overlap(netaddr.IPNetwork(row["cidr"]), existing)


def _insert(
    conn: Connection,
    name: str,
    new: Sequence[Mapping[str, Any]],
    progress: Progress | None,
) -> None:
    for chunk in _chunks(new):
        try:
            conn.execute(insert(TABLES[name]), list(chunk))
        except sa_exc.IntegrityError as exc:
            first = str(exc.orig).strip().splitlines()[0]
            raise exception.Conflict(reason=f"{name}: {first}") from exc
        if progress is not None:
            progress(len(chunk))


def _advance_sequences(conn: Connection, names: Sequence[str]) -> None:
    """PostgreSQL: rows inserted with explicit ids leave the SERIAL
    sequence behind; move it past the largest id so flatnet's next
    INSERT does not collide (SQLite and MySQL do this themselves)."""
    if conn.dialect.name != "postgresql":
        return
    for name in names:
        # Only constant table names are interpolated.
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                f"(SELECT MAX(id) FROM {name}))"
            )
        )


def _check_schema(conn: Connection) -> None:
    have = set(inspect(conn).get_table_names())
    missing = sorted(set(TABLES) - have)
    if missing:
        raise exception.ConfigError(
            reason=f"flatnet's database has no {missing[0]} table: run "
            "'flatnet-manage db sync' first"
        )


def apply_import(
    db: Database,
    wanted: Mapping[str, Sequence[Mapping[str, Any]]],
    progress: Progress | None = None,
) -> dict[str, TableResult]:
    """Insert the rows of ``wanted`` (table -> flatnet rows) that flatnet
    does not have yet, in one transaction. ``progress(n)`` is called as
    rows are written (and with the count of unchanged rows).

    Raises Conflict (nothing written), ConfigError (schema missing).
    """
    results: dict[str, TableResult] = {}
    inserted: dict[str, Sequence[Mapping[str, Any]]] = {}
    with db.write() as conn:
        _check_schema(conn)
        for name in TABLES:
            rows_in = wanted.get(name, ())
            new = _split(conn, name, rows_in)
            _check_keys(conn, name, new)
            _check_composite(conn, name, new)
            if name == "networks":
                _check_overlap(conn, new)
            if progress is not None and len(rows_in) > len(new):
                progress(len(rows_in) - len(new))
            _insert(conn, name, new, progress)
            inserted[name] = new
            results[name] = TableResult(len(new), len(rows_in) - len(new))
            if name == "networks":
                rows.bump_generations(conn, [r["id"] for r in new])
        if results["floating_ips"].inserted:
            rows.bump_counter(conn, rows.RULES_COUNTER)
        if any(results[t].inserted for t in FIREWALL_TABLES):
            secgroups.bump(conn, *_firewall_stamps(inserted))
        _advance_sequences(conn, [n for n, r in results.items() if r.inserted])
    return results
