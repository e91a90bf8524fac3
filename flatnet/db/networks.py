"""Networks: create (with their fixed-IP rows), look up, delete.

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from typing import Any

import netaddr
from sqlalchemy import Connection, delete, insert, or_, select, text, update

from flatnet import exception, ipam, model
from flatnet.db import claims, rows
from flatnet.db.engine import Database, translate_errors
from flatnet.db.rows import FIXED, HOST_STATE, NETWORKS

LOG = logging.getLogger(__name__)

#: PostgreSQL advisory lock serialising network creation (overlap check).
_NETWORK_CREATE_LOCK = 0x666C6174


# --- networks -----------------------------------------------------------
def _network_values(
    layout: ipam.NetworkLayout, fields: dict[str, Any]
) -> dict[str, Any]:
    def ip(value: Any) -> str | None:
        return None if value is None else str(value)

    return {
        "uuid": fields.pop("uuid", None) or str(uuidlib.uuid4()),
        "cidr": str(layout.cidr),
        "netmask": str(layout.netmask),
        "broadcast": str(layout.broadcast),
        "gateway": str(layout.gateway),
        "dhcp_server": str(layout.dhcp_server),
        "dhcp_start": str(layout.dhcp_start),
        "dns1": ip(fields.pop("dns1", None)),
        "dns2": ip(fields.pop("dns2", None)),
        "injected": False,
        "multi_host": bool(fields.pop("multi_host", False)),
        "enable_dhcp": bool(fields.pop("enable_dhcp", True)),
        "share_address": bool(fields.pop("share_address", False)),
        "generation": 1,
        "created_at": rows.now(),
        "deleted": 0,
        **fields,
    }


_NETWORK_EXTRA = frozenset(
    {
        "bridge_interface",
        "dns1",
        "dns2",
        "uuid",
        "mtu",
        "multi_host",
        "project_id",
        "priority",
        "host",
        "enable_dhcp",
        "share_address",
    }
)


def network_create(
    db: Database,
    layout: ipam.NetworkLayout,
    *,
    label: str,
    bridge: str,
    **extra: Any,
) -> model.Network:
    """Insert a network and one fixed_ips row per address of its fixed
    range (bulk), in one transaction.

    ``extra`` may hold bridge_interface, dns1, dns2, uuid, mtu,
    multi_host, project_id, priority, host, enable_dhcp, share_address.
    Raises CidrConflict (checked against the live networks inside the
    transaction), DuplicateNetwork (label, bridge, cidr or uuid).
    """
    unknown = set(extra) - _NETWORK_EXTRA
    if unknown:
        raise TypeError(f"unknown network fields: {sorted(unknown)}")
    fields = {
        "label": label,
        "bridge": bridge,
        **extra,
    }
    values = _network_values(layout, fields)
    with db.write() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": _NETWORK_CREATE_LOCK},
            )
        existing = conn.execute(
            select(NETWORKS.c.cidr).where(NETWORKS.c.deleted == 0)
        ).scalars()
        ipam.check_overlap(
            layout.cidr, (netaddr.IPNetwork(c) for c in existing)
        )
        with translate_errors(**values):
            result = conn.execute(insert(NETWORKS).values(**values))
        network_id = rows.inserted_id(result)
        _insert_fixed_ips(conn, network_id, layout)
        network = rows.live_network(conn, network_id)
    LOG.info(
        "created network %s (%s) on %s with %d addresses",
        network.id,
        network.cidr,
        network.bridge,
        layout.fixed_cidr.size,
    )
    return network


_FIXED_COLUMNS = (
    "address",
    "network_id",
    "reserved",
    "allocated",
    "leased",
    "created_at",
    "deleted",
)


def _insert_fixed_ips(
    conn: Connection, network_id: int, layout: ipam.NetworkLayout
) -> None:
    """One row per address, bypassing SQLAlchemy's per-row parameter
    processing (a /16 is 65,536 rows): COPY on PostgreSQL, the DBAPI's
    executemany elsewhere."""
    when = rows.now()
    batch = [
        (address, network_id, reserved, False, False, when, 0)
        for address, reserved in ipam.fixed_ip_rows(layout)
    ]
    columns = ", ".join(_FIXED_COLUMNS)
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY fixed_ips ({columns}) FROM STDIN") as cp:
                for row in batch:
                    cp.write_row(row)
        return
    # The text SQLAlchemy's SQLite DateTime type stores.
    stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f")
    marks = ", ".join("?" * len(_FIXED_COLUMNS))
    # Only constant column names are interpolated; values are bound.
    sql = f"INSERT INTO fixed_ips ({columns}) VALUES ({marks})"  # noqa: S608
    conn.exec_driver_sql(sql, [(*row[:5], stamp, row[6]) for row in batch])


#: Largest id a database integer column holds (SQLite, PostgreSQL bigint).
_MAX_ID = (1 << 63) - 1


def _as_id(ident: str) -> int:
    """``ident`` as a network id, -1 if it cannot be one (an id that does
    not fit a database integer is no id, not an overflow error)."""
    if ident.isascii() and ident.isdigit() and int(ident) <= _MAX_ID:
        return int(ident)
    return -1


def _network_row(conn: Connection, ident: str) -> Any:
    ident = str(ident).strip()
    params = {"b_ident": ident, "b_id": _as_id(ident)}
    row = conn.execute(claims.network_lookup(), params).first()
    if row is None:
        raise exception.NetworkNotFound(network=ident)
    return row


def network_get(db: Database, ident: str) -> model.Network:
    """A live network by id, uuid, label or cidr. Raises NetworkNotFound."""
    with db.read() as conn:
        return rows.to_network(_network_row(conn, ident))


def network_list(db: Database) -> list[model.Network]:
    with db.read() as conn:
        found = conn.execute(
            select(NETWORKS)
            .where(NETWORKS.c.deleted == 0)
            .order_by(NETWORKS.c.id)
        ).all()
    return [rows.to_network(r) for r in found]


def network_delete(db: Database, ident: str) -> model.Network:
    """Delete a network and its fixed_ips rows (the network row is soft
    deleted). Raises NetworkNotFound, NetworkInUse (an address is still
    allocated or leased)."""
    with db.write() as conn:
        row = _network_row(conn, ident)
        busy = conn.execute(
            select(FIXED.c.id)
            .where(
                FIXED.c.network_id == row.id,
                FIXED.c.deleted == 0,
                or_(FIXED.c.allocated, FIXED.c.leased),
            )
            .limit(1)
        ).first()
        if busy is not None:
            raise exception.NetworkInUse(network=row.label)
        conn.execute(delete(FIXED).where(FIXED.c.network_id == row.id))
        conn.execute(
            delete(HOST_STATE).where(
                HOST_STATE.c.key == rows.network_key(row.id)
            )
        )
        conn.execute(
            update(NETWORKS)
            .where(NETWORKS.c.id == row.id)
            .values(
                deleted=row.id,
                deleted_at=rows.now(),
                generation=NETWORKS.c.generation + 1,
            )
        )
    LOG.info("deleted network %s (%s)", row.id, row.cidr)
    return rows.to_network(row)


def network_generations(db: Database) -> dict[int, int]:
    """Live network id -> generation."""
    with db.read() as conn:
        found = conn.execute(
            select(NETWORKS.c.id, NETWORKS.c.generation).where(
                NETWORKS.c.deleted == 0
            )
        ).all()
    return {r.id: r.generation for r in found}


def network_set_host(db: Database, network_id: int, host: str) -> str:
    """Claim a network for ``host`` if it has none (compare-and-set, not
    nova's read-modify-save in nova.network.manager
    NetworkManager.set_network_host). Returns the owner afterwards."""
    with db.write() as conn:
        conn.execute(
            update(NETWORKS)
            .where(NETWORKS.c.id == network_id, NETWORKS.c.host.is_(None))
            .values(host=host, generation=NETWORKS.c.generation + 1)
        )
        return str(rows.live_network(conn, network_id).host)
