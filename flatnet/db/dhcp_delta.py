"""The incremental DHCP read of a sharded network (issue 12).

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.

Every write that changes what a DHCP shard serves bumps that shard's
``dhcp_shards.generation`` in its own transaction (:func:`flatnet.db.
shards.bump`). The network host keeps, per shard, the generation it
applied and reads with :func:`shard_read` the hosts and leases of only
the shards whose generation moved (``shards=None``: every shard, the
full read of a daemon start). The generations are read in the SAME
transaction as the rows, so a write committed after the read has a
higher generation and is read at the next sync: nothing is missed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import netaddr
from sqlalchemy import ColumnElement, Connection, func, select, true

from flatnet import model
from flatnet.db import models
from flatnet.db.engine import Database
from flatnet.db.rows import FIXED, INSTANCES, VIFS

SHARDS = models.DHCP_SHARDS
_NO_ADDRESS = netaddr.IPAddress(0)  # ShardRead.full needs only indexes


def _in_shards(network_id: int, shards: Collection[int] | None) -> Any:
    where: list[ColumnElement[bool]] = [
        FIXED.c.network_id == network_id,
        FIXED.c.deleted == 0,
    ]
    if shards is not None:
        where.append(FIXED.c.dhcp_shard.in_(sorted(shards)))
    return where


def _generations(
    conn: Connection, network_id: int, shards: Collection[int] | None
) -> dict[int, int]:
    query = select(SHARDS.c.shard, SHARDS.c.generation).where(
        SHARDS.c.network_id == network_id
    )
    if shards is not None:
        query = query.where(SHARDS.c.shard.in_(sorted(shards)))
    return {int(k): int(g) for k, g in conn.execute(query)}


def _entries(
    conn: Connection, network_id: int, shards: Collection[int] | None
) -> list[model.HostEntry]:
    """As :func:`flatnet.db.leases.host_entries`, of ``shards`` only; the
    instance's first VIF by a per-row index lookup (not a GROUP BY of
    every VIF of the database)."""
    first = VIFS.alias("first")
    first_vif = (
        select(func.min(first.c.id))
        .where(
            first.c.instance_uuid == FIXED.c.instance_uuid,
            first.c.deleted == 0,
        )
        .scalar_subquery()
    )
    query = (
        select(
            FIXED.c.address,
            VIFS.c.address.label("mac"),
            VIFS.c.id,
            INSTANCES.c.hostname,
            first_vif.label("first_vif"),
            FIXED.c.dhcp_shard,
        )
        .join(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .join(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .where(FIXED.c.allocated == true(), *_in_shards(network_id, shards))
    )
    return [
        model.HostEntry(
            mac=netaddr.EUI(r.mac),
            address=netaddr.IPAddress(r.address),
            hostname=r.hostname,
            vif_id=r.id,
            default_route=r.first_vif in (None, r.id),
            shard=r.dhcp_shard,
        )
        for r in conn.execute(query)
    ]


def _leases(
    conn: Connection, network_id: int, shards: Collection[int] | None
) -> list[model.Lease]:
    """As :func:`flatnet.db.leases.leases`, of ``shards`` only."""
    query = (
        select(
            FIXED.c.address,
            VIFS.c.address.label("mac"),
            INSTANCES.c.hostname,
            FIXED.c.dhcp_shard,
        )
        .join(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .outerjoin(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .where(FIXED.c.leased == true(), *_in_shards(network_id, shards))
    )
    return [
        model.Lease(
            mac=netaddr.EUI(r.mac),
            address=netaddr.IPAddress(r.address),
            hostname=r.hostname,
            shard=r.dhcp_shard,
        )
        for r in conn.execute(query)
    ]


def shard_read(
    db: Database, network_id: int, shards: Collection[int] | None
) -> model.ShardRead:
    """The generations, hosts and leases of ``shards`` of ``network_id``
    (None: every shard), in one read transaction. A host without a shard
    is in none (``ensure_shards`` gives it one first)."""
    with db.read() as conn:
        generations = _generations(conn, network_id, shards)
        found = _entries(conn, network_id, shards)
        leased = _leases(conn, network_id, shards)
    rows = [
        model.DhcpShard(network_id, k, _NO_ADDRESS, g)
        for k, g in generations.items()
    ]
    return model.ShardRead.full(rows, found, leased)
