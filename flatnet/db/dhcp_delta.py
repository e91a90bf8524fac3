"""The incremental DHCP read of a sharded network (issue 12).

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.

Every write that changes what a DHCP shard serves bumps that shard's
``dhcp_shards.generation`` and stamps the rows it changed with the new
generation (``fixed_ips.dhcp_gen``), in its own transaction
(:func:`flatnet.db.shards.touch`). The network host keeps, per shard, the
generation it applied and reads with :func:`shard_read` only the rows
stamped above it (index ``fixed_ips_dhcp_idx``): 1,000 new hosts cost
1,000 rows, whatever the network's size. A shard it has not applied
(start, new shard, failed apply) is read whole. The generations are read
in the SAME transaction as the rows, so a write committed after the read
has a higher stamp and is read at the next sync: nothing is missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import netaddr
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    false,
    func,
    or_,
    select,
)

from flatnet import model
from flatnet.db import dhcp_reads, models, rows
from flatnet.db.engine import Database
from flatnet.db.rows import FIXED, INSTANCES, NETWORKS, VIFS

SHARDS = models.DHCP_SHARDS
#: shard index -> generation applied (None: read it whole); None: all
Since = Mapping[int, int | None] | None


def _rows_of(network_id: int, since: Since) -> ColumnElement[bool]:
    """The rows of ``network_id`` to read: stamped above ``since[k]`` in
    shard k, all rows of a shard whose generation is None."""
    where = and_(FIXED.c.network_id == network_id, FIXED.c.deleted == 0)
    if since is None:
        return where
    whole = sorted(k for k, g in since.items() if g is None)
    parts: list[ColumnElement[bool]] = []
    if whole:
        parts.append(FIXED.c.dhcp_shard.in_(whole))
    parts += [
        and_(FIXED.c.dhcp_shard == k, FIXED.c.dhcp_gen > g)
        for k, g in sorted(since.items())
        if g is not None
    ]
    return and_(where, or_(*parts) if parts else false())


def _generations(
    conn: Connection, network_id: int, since: Since
) -> dict[int, int]:
    query = select(SHARDS.c.shard, SHARDS.c.generation).where(
        SHARDS.c.network_id == network_id
    )
    if since is not None:
        query = query.where(SHARDS.c.shard.in_(sorted(since)))
    return {int(k): int(g) for k, g in conn.execute(query)}


def _changed(conn: Connection, network_id: int, since: Since) -> list[Any]:
    """The rows to read, as :func:`flatnet.db.dhcp_reads.host_entries` sees
    them (the instance's first VIF by a per-row index lookup, not a
    GROUP BY of every VIF); VIF and instance outer-joined, so a row that
    is no longer a host is seen too."""
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
            FIXED.c.allocated,
            FIXED.c.dhcp_shard,
            VIFS.c.address.label("mac"),
            VIFS.c.id,
            INSTANCES.c.hostname,
            first_vif.label("first_vif"),
        )
        .outerjoin(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .outerjoin(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .where(_rows_of(network_id, since))
    )
    if since is None:
        query = query.where(FIXED.c.dhcp_shard.is_not(None))
    return list(conn.execute(query))


def _stale_leases(
    conn: Connection, network_id: int, shards: list[int]
) -> list[model.Lease]:
    """Leases of ``shards`` on addresses that are not hosts (as
    :func:`flatnet.db.dhcp_reads.leases` sees them)."""
    query = dhcp_reads.leased_query(network_id).where(
        FIXED.c.dhcp_shard.in_(shards), FIXED.c.allocated == false()
    )
    return [dhcp_reads.lease_of(r) for r in conn.execute(query)]


def _entry(r: Any) -> model.HostEntry | None:
    if not r.allocated or r.mac is None or r.hostname is None:
        return None
    return dhcp_reads.entry_of(r)


def shard_read(db: Database, network_id: int, since: Since) -> model.ShardRead:
    """What changed in the shards of ``network_id`` since ``since``
    (shard index -> generation applied, None: read whole; ``since`` None:
    every shard whole), in one read transaction. A host without a shard
    is in none (``ensure_shards`` gives it one first)."""
    with db.read() as conn:
        generations = _generations(conn, network_id, since)
        found = _changed(conn, network_id, since)
        leased = _stale_leases(conn, network_id, sorted(generations))
    complete = frozenset(
        generations
        if since is None
        else (k for k, g in since.items() if g is None)
    )
    read = model.ShardRead(
        generations, complete & set(generations), {}, {}, {}
    )
    for k in generations:
        read.entries[k], read.removed[k], read.leased[k] = [], [], []
    for r in sorted(found, key=lambda r: netaddr.IPAddress(r.address)):
        if r.dhcp_shard not in generations:
            continue
        entry = _entry(r)
        if entry is not None:
            read.entries[r.dhcp_shard].append(entry)
        elif r.dhcp_shard not in read.complete:
            read.removed[r.dhcp_shard].append(netaddr.IPAddress(r.address))
    for lease in sorted(leased, key=lambda x: x.address):
        read.leased[int(lease.shard or 0)].append(lease)
    return read


def sharded_networks(
    db: Database,
) -> list[tuple[model.Network, bool, list[model.DhcpShard]]]:
    """Every network that has DHCP shards, deleted ones included (their
    rows stay): ``(network, deleted, shards)``. A daemon start removes
    the shards it finds of those it does not serve."""
    with db.read() as conn:
        found = conn.execute(
            select(NETWORKS).where(
                NETWORKS.c.id.in_(select(SHARDS.c.network_id).distinct())
            )
        ).all()
        shards = conn.execute(
            select(SHARDS).order_by(SHARDS.c.network_id, SHARDS.c.shard)
        ).all()
    by_network: dict[int, list[model.DhcpShard]] = {}
    for r in shards:
        by_network.setdefault(r.network_id, []).append(
            model.DhcpShard(
                r.network_id,
                r.shard,
                netaddr.IPAddress(r.address),
                r.generation,
            )
        )
    return [
        (rows.to_network(r), r.deleted != 0, by_network.get(r.id, []))
        for r in found
    ]
