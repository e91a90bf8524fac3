"""DHCP shards of large networks (stored, never recomputed).

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.

A network with more hosts than ``dhcp_shard_hosts`` is served by N
dnsmasq, one per shard. Each shard has an address of the network's own
range, reserved in ``fixed_ips`` (never given to an instance), and each
host (allocated fixed IP with a VIF) stores its shard in
``fixed_ips.dhcp_shard``:

* at allocation, the least-loaded shard (:func:`assign`, same
  transaction as the claim);
* hosts without a shard (the network just went from one dnsmasq to
  shards, or was allocated before its shards existed) get one in
  :func:`ensure_shards`, least-loaded first.

A host's shard is never changed afterwards: adding a shard moves no
existing host, it only receives the new ones (it is the least loaded).
A deallocated address keeps its shard until it is claimed again, so
its lease is released by the dnsmasq that holds it.

Each shard has a ``generation``, bumped in the same transaction as every
write that changes what it serves, and each row so changed is stamped
with the new generation (``fixed_ips.dhcp_gen``, :func:`touch`):
:func:`assign` (allocation), :func:`_spread`, deallocation
(``allocation.deallocate_for_instance``), the stale-lease cleanup
(``leases.disassociate_stale_fixed_ips``). The network host reads only
the rows stamped above the generation it applied of each shard
(:mod:`flatnet.db.dhcp_delta`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import netaddr
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    func,
    insert,
    select,
    true,
    update,
)

from flatnet import exception, model
from flatnet.db import claims, models
from flatnet.db.engine import Database
from flatnet.db.rows import FIXED

LOG = logging.getLogger(__name__)
SHARDS = models.DHCP_SHARDS


def _rows(conn: Connection, network_id: int) -> list[model.DhcpShard]:
    found = conn.execute(
        select(SHARDS)
        .where(SHARDS.c.network_id == network_id)
        .order_by(SHARDS.c.shard)
    ).all()
    return [
        model.DhcpShard(
            network_id=r.network_id,
            index=r.shard,
            address=netaddr.IPAddress(r.address),
            generation=int(r.generation),
        )
        for r in found
    ]


def shard_list(db: Database, network_id: int) -> list[model.DhcpShard]:
    """The shards of ``network_id`` by index (empty: one dnsmasq)."""
    with db.read() as conn:
        return _rows(conn, network_id)


def _hosts() -> ColumnElement[bool]:
    return and_(
        FIXED.c.deleted == 0,
        FIXED.c.allocated == true(),
        FIXED.c.virtual_interface_id.is_not(None),
    )


def _loads(conn: Connection, network_id: int) -> dict[int, int]:
    """Hosts per shard index (shards without hosts included)."""
    counted = (
        select(SHARDS.c.shard, func.count(FIXED.c.id))
        .select_from(
            SHARDS.outerjoin(
                FIXED,
                and_(
                    FIXED.c.network_id == SHARDS.c.network_id,
                    FIXED.c.dhcp_shard == SHARDS.c.shard,
                    _hosts(),
                ),
            )
        )
        .where(SHARDS.c.network_id == network_id)
        .group_by(SHARDS.c.shard)
    )
    return {int(shard): int(count) for shard, count in conn.execute(counted)}


def assign(conn: Connection, network_id: int, address: str) -> int | None:
    """Store the least-loaded shard (lowest index on a tie) on the
    freshly claimed ``address`` and bump that shard's generation; None
    if the network is not sharded.

    O(shards): the load is the shard's ``hosts`` counter, which
    :func:`ensure_shards` re-counts exactly (the network host calls it
    before every sync); a count query per allocation cost 40 ms at
    10,000 hosts.
    """
    row = conn.execute(
        select(SHARDS.c.shard)
        .where(SHARDS.c.network_id == network_id)
        .order_by(SHARDS.c.hosts, SHARDS.c.shard)
        .limit(1)
    ).first()
    if row is None:
        return None
    shard = int(row.shard)
    generation = _bump(conn, network_id, shard, hosts=1)
    conn.execute(
        update(FIXED)
        .where(
            FIXED.c.network_id == network_id,
            FIXED.c.address == address,
            FIXED.c.deleted == 0,
        )
        .values(dhcp_shard=shard, dhcp_gen=generation)
    )
    return shard


def _bump(
    conn: Connection, network_id: int, shard: int, hosts: int = 0
) -> int:
    """generation + 1 (and ``hosts`` + ``hosts``); the new generation."""
    return int(
        conn.execute(
            update(SHARDS)
            .where(SHARDS.c.network_id == network_id, SHARDS.c.shard == shard)
            .values(
                hosts=SHARDS.c.hosts + hosts,
                generation=SHARDS.c.generation + 1,
            )
            .returning(SHARDS.c.generation)
        ).scalar_one()
    )


def touch(
    conn: Connection, changed: Iterable[tuple[int, int, int | None]]
) -> None:
    """Announce that the ``fixed_ips`` rows ``(id, network_id, shard)``
    changed what their shard serves (same transaction as the change):
    each shard's generation + 1, each row stamped with it (``dhcp_gen``).
    A row without a shard is served by none: nothing to do. Shards in
    key order (one lock order for concurrent PostgreSQL transactions)."""
    by_shard: dict[tuple[int, int], list[int]] = {}
    for fixed_id, network_id, shard in changed:
        if shard is not None:
            by_shard.setdefault((network_id, shard), []).append(fixed_id)
    for (network_id, shard), ids in sorted(by_shard.items()):
        generation = _bump(conn, network_id, shard)
        for start in range(0, len(ids), 500):
            conn.execute(
                update(FIXED)
                .where(FIXED.c.id.in_(ids[start : start + 500]))
                .values(dhcp_gen=generation)
            )


def _recount(conn: Connection, network_id: int) -> None:
    """Each shard's ``hosts`` counter set to its exact load."""
    for shard, count in _loads(conn, network_id).items():
        conn.execute(
            update(SHARDS)
            .where(
                SHARDS.c.network_id == network_id,
                SHARDS.c.shard == shard,
                SHARDS.c.hosts != count,
            )
            .values(hosts=count)
        )


def shards_needed(
    hosts: int, existing: int, shard_hosts: int, max_shards: int = 20
) -> int:
    """How many shards a network with ``hosts`` hosts should have: none
    up to ``shard_hosts``, else enough for ``shard_hosts`` each but at
    most ``max_shards`` (then they grow); never fewer than it has (a
    shard is never removed while it may hold leases)."""
    if shard_hosts < 1 or max_shards < 1:
        raise exception.InvalidInput(
            reason="dhcp_shard_hosts and dhcp_max_shards must be >= 1"
        )
    needed = math.ceil(hosts / shard_hosts) if hosts > shard_hosts else 0
    return max(existing, min(needed, max_shards))


def _reserve(conn: Connection, network_id: int, count: int) -> list[str]:
    """Reserve ``count`` free addresses, highest first."""
    free = conn.execute(
        select(FIXED.c.id, FIXED.c.address)
        .where(FIXED.c.network_id == network_id, models.fixed_ip_is_free())
        .order_by(FIXED.c.id.desc())
        .limit(count)
    ).all()
    if len(free) < count:
        raise exception.NoMoreFixedIps(network=str(network_id))
    conn.execute(
        update(FIXED)
        .where(FIXED.c.id.in_([r.id for r in free]))
        .values(reserved=True)
    )
    return [r.address for r in free]


def _add_shards(
    conn: Connection, network_id: int, first: int, count: int
) -> None:
    addresses = _reserve(conn, network_id, count)
    conn.execute(
        insert(SHARDS),
        [
            {
                "network_id": network_id,
                "shard": first + i,
                "address": a,
                "hosts": 0,
            }
            for i, a in enumerate(addresses)
        ],
    )
    LOG.info(
        "network %s: added DHCP shards %d-%d (%s)",
        network_id,
        first,
        first + count - 1,
        ", ".join(addresses),
    )


def _spread(conn: Connection, network_id: int) -> int:
    """Give every host without a shard the least-loaded one (address
    order); how many were assigned."""
    loads = _loads(conn, network_id)
    ids: Sequence[int] = (
        conn.execute(
            select(FIXED.c.id)
            .where(
                FIXED.c.network_id == network_id,
                FIXED.c.dhcp_shard.is_(None),
                _hosts(),
            )
            .order_by(FIXED.c.id)
        )
        .scalars()
        .all()
    )
    chosen: dict[int, list[int]] = {k: [] for k in loads}
    for fixed_id in ids:
        shard = min(loads, key=lambda k: (loads[k], k))
        loads[shard] += 1
        chosen[shard].append(fixed_id)
    for shard, members in chosen.items():
        for start in range(0, len(members), 500):
            conn.execute(
                update(FIXED)
                .where(FIXED.c.id.in_(members[start : start + 500]))
                .values(dhcp_shard=shard)
            )
    touch(conn, ((i, network_id, k) for k, v in chosen.items() for i in v))
    return len(ids)


def _host_count(conn: Connection, network_id: int) -> int:
    return int(
        conn.execute(
            select(func.count(FIXED.c.id)).where(
                FIXED.c.network_id == network_id, _hosts()
            )
        ).scalar_one()
    )


def _settled(
    conn: Connection, network_id: int, shard_hosts: int, max_shards: int
) -> bool:
    """True if nothing is to do: enough shards, every host has one and
    every ``hosts`` counter is exact (read only, no write lock)."""
    rows = conn.execute(
        select(SHARDS.c.shard, SHARDS.c.hosts).where(
            SHARDS.c.network_id == network_id
        )
    ).all()
    hosts = _host_count(conn, network_id)
    if shards_needed(hosts, len(rows), shard_hosts, max_shards) != len(rows):
        return False
    if not rows:
        return True
    counters = {int(r.shard): int(r.hosts) for r in rows}
    exact = _loads(conn, network_id) == counters
    return exact and sum(counters.values()) == hosts  # all have a shard


def ensure_shards(
    db: Database, network_id: int, shard_hosts: int, max_shards: int = 20
) -> list[model.DhcpShard]:
    """Add the shards ``network_id`` needs with ``shard_hosts`` hosts
    per shard (at most ``max_shards``), give every host without a shard
    one and re-count each shard's load; bumps the network's generation
    if a shard was added or a host assigned. Returns the shards. Only
    reads when there is nothing to do (the network host calls it before
    every sync).

    Raises NoMoreFixedIps if no free address is left for a shard,
    InvalidInput if ``shard_hosts`` or ``max_shards`` < 1.
    """
    with db.read() as conn:
        if _settled(conn, network_id, shard_hosts, max_shards):
            return _rows(conn, network_id)
    with db.write() as conn:
        hosts = _host_count(conn, network_id)
        existing = len(_rows(conn, network_id))
        wanted = shards_needed(hosts, existing, shard_hosts, max_shards)
        if wanted > existing:
            _add_shards(conn, network_id, existing, wanted - existing)
        moved = _spread(conn, network_id) if wanted else 0
        if wanted:
            _recount(conn, network_id)
        if wanted > existing or moved:
            conn.execute(claims.bump_network(), {"b_id": network_id})
        return _rows(conn, network_id)
