"""Shared pieces of the query modules: tables, clock, row -> model.

Private to :mod:`flatnet.db`; callers outside use :mod:`flatnet.db.api`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import netaddr
from sqlalchemy import Connection, CursorResult, Row, select, update

from flatnet import model
from flatnet.db import models

NETWORKS = models.NETWORKS
INSTANCES = models.INSTANCES
VIFS = models.VIFS
FIXED = models.FIXED
FLOATING = models.FLOATING
HOST_STATE = models.HOST_STATE
JOURNALS = models.JOURNALS
GENERATIONS = models.GENERATIONS
SECURITY_GROUPS = models.SECURITY_GROUPS
SECURITY_GROUP_RULES = models.SECURITY_GROUP_RULES
SECURITY_GROUP_INSTANCES = models.SECURITY_GROUP_INSTANCES

RULES_COUNTER = "rules"


def network_key(network_id: int) -> str:
    """The readiness key (and generation scope) of a network."""
    return f"network:{network_id}"


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row a single-row INSERT created."""
    key = result.inserted_primary_key
    assert key is not None  # noqa: S101 - single-row INSERT always has one
    return int(key[0])


def now() -> datetime.datetime:
    """Naive UTC, as nova stores timestamps."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def naive_utc(when: datetime.datetime) -> datetime.datetime:
    """``when`` as naive UTC (aware values are converted)."""
    if when.tzinfo is None:
        return when
    return when.astimezone(datetime.UTC).replace(tzinfo=None)


def _ip(value: str | None) -> netaddr.IPAddress | None:
    return netaddr.IPAddress(value) if value else None


def to_network(row: Row[Any]) -> model.Network:
    m = row._mapping
    return model.Network(
        id=m["id"],
        uuid=m["uuid"],
        label=m["label"],
        cidr=netaddr.IPNetwork(m["cidr"]),
        gateway=_ip(m["gateway"]),
        dhcp_server=_ip(m["dhcp_server"]),
        dhcp_start=_ip(m["dhcp_start"]),
        broadcast=netaddr.IPAddress(m["broadcast"]),
        netmask=netaddr.IPAddress(m["netmask"]),
        bridge=m["bridge"],
        bridge_interface=m["bridge_interface"],
        dns1=_ip(m["dns1"]),
        dns2=_ip(m["dns2"]),
        mtu=m["mtu"],
        multi_host=bool(m["multi_host"]),
        host=m["host"],
        enable_dhcp=bool(m["enable_dhcp"]),
        share_address=bool(m["share_address"]),
        project_id=m["project_id"],
        priority=m["priority"],
        generation=m["generation"],
    )


def to_instance(row: Row[Any]) -> model.Instance:
    m = row._mapping
    return model.Instance(
        id=m["id"],
        uuid=m["uuid"],
        hostname=m["hostname"],
        display_name=m["display_name"],
        host=m["host"],
        project_id=m["project_id"],
        launched_on=m["launched_on"],
        created_at=m["created_at"],
    )


def to_vif(row: Row[Any]) -> model.Vif:
    m = row._mapping
    return model.Vif(
        id=m["id"],
        uuid=m["uuid"],
        address=netaddr.EUI(m["address"]),
        network_id=m["network_id"],
        instance_uuid=m["instance_uuid"],
    )


def live_network(conn: Connection, network_id: int) -> model.Network:
    row = conn.execute(
        select(NETWORKS).where(
            NETWORKS.c.id == network_id, NETWORKS.c.deleted == 0
        )
    ).one()
    return to_network(row)


def bump_generations(conn: Connection, network_ids: Iterable[int]) -> None:
    """Announce a change hosts must apply (same transaction as it).

    Ids are sorted so that concurrent PostgreSQL transactions lock the
    network rows in the same order (no deadlock).
    """
    for network_id in sorted(set(network_ids)):
        conn.execute(
            update(NETWORKS)
            .where(NETWORKS.c.id == network_id)
            .values(generation=NETWORKS.c.generation + 1)
        )


def upsert(
    conn: Connection,
    table: Any,
    keys: dict[str, Any],
    values: dict[str, Any],
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET values."""
    # Imported here: a dialect module costs every CLI call that does not
    # write (network list) tens of milliseconds.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        pg = postgresql.insert(table).values(**keys, **values)
        conn.execute(
            pg.on_conflict_do_update(index_elements=list(keys), set_=values)
        )
        return
    from sqlalchemy.dialects import sqlite  # noqa: PLC0415

    lite = sqlite.insert(table).values(**keys, **values)
    stmt = lite.on_conflict_do_update(index_elements=list(keys), set_=values)
    conn.execute(stmt)


def bump_counter(conn: Connection, name: str) -> None:
    """Increment the generation of scope ``name`` (created at 1)."""
    result = conn.execute(
        update(GENERATIONS)
        .where(GENERATIONS.c.scope == name)
        .values(generation=GENERATIONS.c.generation + 1)
    )
    if result.rowcount == 0:
        upsert(conn, GENERATIONS, {"scope": name}, {"generation": 1})


def counter(conn: Connection, name: str) -> int:
    """The generation of scope ``name`` (0 if never bumped)."""
    value = conn.execute(
        select(GENERATIONS.c.generation).where(GENERATIONS.c.scope == name)
    ).scalar()
    return int(value or 0)
