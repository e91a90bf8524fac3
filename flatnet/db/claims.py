"""The hot statements of an allocation, built once (private to db).

Building a SQLAlchemy statement costs more than running it on SQLite, so
the statements of the allocation path are constructed once per dialect
with bind parameters and reused.

The pool claim is one statement: ``UPDATE fixed_ips SET ... WHERE id =
COALESCE(<first never-used free row>, <least recently used free row>)
AND <free again> RETURNING address``, each subquery ``LIMIT 1`` and, on
PostgreSQL, ``FOR UPDATE SKIP LOCKED``. The
repeated "free" conditions make it a conditional update: it can only
take a row that is still free when it writes it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    true,
    update,
)

from flatnet.db import models
from flatnet.db.rows import FIXED, INSTANCES, NETWORKS, VIFS


def _free() -> ColumnElement[bool]:
    return and_(
        FIXED.c.network_id == bindparam("b_network_id"),
        models.fixed_ip_is_free(),
    )


_CLAIM_VALUES: dict[str, Any] = {
    "instance_uuid": bindparam("b_instance_uuid"),
    "virtual_interface_id": bindparam("b_vif_id"),
    "allocated": true(),
    "updated_at": bindparam("b_now", type_=FIXED.c.updated_at.type),
}


@functools.cache
def pool_claim(dialect: str) -> Update:
    """Claim the oldest free address of ``b_network_id``.

    "Oldest" is nova's ``ORDER BY updated_at`` with NULL (never used)
    first, then id. It is written as COALESCE(first never-used row,
    least recently used row) so that each half walks one partial index
    (fixed_ips_never_used_idx, fixed_ips_lru_idx) in order, on SQLite
    and PostgreSQL alike, instead of sorting the network's free rows.
    """
    never_used = (
        select(FIXED.c.id)
        .where(_free(), FIXED.c.updated_at.is_(None))
        .order_by(FIXED.c.id)
        .limit(1)
    )
    least_recent = (
        select(FIXED.c.id)
        .where(_free(), FIXED.c.updated_at.is_not(None))
        .order_by(FIXED.c.updated_at, FIXED.c.id)
        .limit(1)
    )
    if dialect == "postgresql":
        never_used = never_used.with_for_update(skip_locked=True)
        least_recent = least_recent.with_for_update(skip_locked=True)
    oldest = func.coalesce(
        never_used.scalar_subquery(), least_recent.scalar_subquery()
    )
    return (
        update(FIXED)
        .where(FIXED.c.id == oldest, _free())
        .values(**_CLAIM_VALUES)
        .returning(FIXED.c.address)
    )


@functools.cache
def address_claim() -> Update:
    """Claim the address ``b_address`` if it is free."""
    return (
        update(FIXED)
        .where(FIXED.c.address == bindparam("b_address"), _free())
        .values(**_CLAIM_VALUES)
        .returning(FIXED.c.address)
    )


@functools.cache
def any_free() -> Any:
    return select(FIXED.c.id).where(_free()).limit(1)


@functools.cache
def bump_network() -> Update:
    """generation + 1 for live network ``b_id``, returning the row."""
    return (
        update(NETWORKS)
        .where(NETWORKS.c.id == bindparam("b_id"), NETWORKS.c.deleted == 0)
        .values(generation=NETWORKS.c.generation + 1)
        .returning(*NETWORKS.c)
    )


@functools.cache
def network_lookup() -> Select[Any]:
    """Live networks whose uuid, label or cidr is ``b_ident`` or whose id
    is ``b_id``, by id."""
    return (
        select(NETWORKS)
        .where(
            NETWORKS.c.deleted == 0,
            or_(
                NETWORKS.c.uuid == bindparam("b_ident"),
                NETWORKS.c.label == bindparam("b_ident"),
                NETWORKS.c.cidr == bindparam("b_ident"),
                NETWORKS.c.id == bindparam("b_id"),
            ),
        )
        .order_by(NETWORKS.c.id)
    )


@functools.cache
def insert_instance() -> Insert:
    return insert(INSTANCES)


@functools.cache
def insert_vif() -> Insert:
    return insert(VIFS)


def claim_params(
    network_id: int, instance_uuid: str, vif_id: int, when: Any
) -> dict[str, Any]:
    return {
        "b_network_id": network_id,
        "b_instance_uuid": instance_uuid,
        "b_vif_id": vif_id,
        "b_now": when,
    }


def has_free(conn: Connection, network_id: int) -> bool:
    return (
        conn.execute(any_free(), {"b_network_id": network_id}).first()
        is not None
    )
