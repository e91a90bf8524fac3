"""Allocation and deallocation of fixed IPs (nova.network.manager
NetworkManager.allocate_for_instance / deallocate_for_instance,
nova.db.sqlalchemy.api.fixed_ip_associate_pool).

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.

An allocation is one short write transaction: insert the instance (if
new), bump each network's generation, then per network insert a VIF and
claim one fixed IP, oldest first (``updated_at`` NULL first, then oldest,
then id) with a conditional UPDATE (see :mod:`flatnet.db.claims`). On
SQLite the transaction holds the write lock from BEGIN IMMEDIATE; on
PostgreSQL the generation bump locks the network row and the claim uses
FOR UPDATE SKIP LOCKED. Either way no address is handed out twice and
none is lost; a failed claim is retried.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid as uuidlib
from collections.abc import Sequence
from typing import Any

import netaddr
from sqlalchemy import (
    Connection,
    and_,
    select,
    update,
)

from flatnet import exception, mac, model
from flatnet.db import (
    claims,
    live_migration,
    rows,
    secgroup_members,
    secgroups,
    shards,
)
from flatnet.db.engine import Database, translate_errors
from flatnet.db.rows import FIXED, FLOATING, INSTANCES, NETWORKS, VIFS
from flatnet.plan.boot_data import BootData

LOG = logging.getLogger(__name__)
CLAIM_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceSpec:
    """A new instance: validated host name and optional fixed uuid."""

    hostname: str
    display_name: str
    host: str | None = None
    project_id: str | None = None
    uuid: str | None = None
    #: security group names (in the project; "default" made on first use)
    security_groups: tuple[str, ...] = ()
    #: metadata service: user data (base64) and SSH key, as nova stored.
    boot: BootData = BootData()


@dataclasses.dataclass(frozen=True, slots=True)
class VifRequest:
    """One interface to create: network, MAC and optional fixed address."""

    network_id: int
    mac: netaddr.EUI
    address: netaddr.IPAddress | None = None


def insert_instance(conn: Connection, spec: InstanceSpec) -> model.Instance:
    values: dict[str, Any] = {
        "uuid": spec.uuid or str(uuidlib.uuid4()),
        "hostname": spec.hostname,
        "display_name": spec.display_name,
        "host": spec.host,
        "launched_on": spec.host,
        "project_id": spec.project_id,
        "created_at": rows.now(),
        "deleted": 0,
        **dataclasses.asdict(spec.boot),
    }
    with translate_errors(
        hostname=spec.hostname, instance_uuid=values["uuid"]
    ):
        result = conn.execute(claims.insert_instance(), values)
    instance = model.Instance(
        id=rows.inserted_id(result),
        uuid=values["uuid"],
        hostname=spec.hostname,
        display_name=spec.display_name,
        host=spec.host,
        project_id=spec.project_id,
        launched_on=spec.host,
        created_at=values["created_at"],
    )
    # The caller bumps "firewall" (after any network row: lock order).
    secgroup_members.attach(conn, instance, spec.security_groups)
    return instance


def _insert_vif(
    conn: Connection, instance_uuid: str, req: VifRequest
) -> model.Vif:
    values: dict[str, Any] = {
        "address": mac.format_mac(req.mac),
        "network_id": req.network_id,
        "instance_uuid": instance_uuid,
        "uuid": str(uuidlib.uuid4()),
        "created_at": rows.now(),
        "deleted": 0,
    }
    with translate_errors(mac=values["address"], network=req.network_id):
        result = conn.execute(claims.insert_vif(), values)
    return model.Vif(
        id=rows.inserted_id(result),
        uuid=values["uuid"],
        address=req.mac,
        network_id=req.network_id,
        instance_uuid=instance_uuid,
    )


def _claim_pool(
    conn: Connection, network: model.Network, params: dict[str, Any]
) -> str:
    stmt = claims.pool_claim(conn.dialect.name)
    for _attempt in range(CLAIM_ATTEMPTS):
        address = conn.execute(stmt, params).scalar()
        if address is not None:
            return str(address)
        if not claims.has_free(conn, network.id):
            raise exception.NoMoreFixedIps(network=network.label)
        LOG.debug("claim on network %s lost a race, retrying", network.id)
    raise exception.AllocationError(
        reason=f"could not claim a fixed IP in network {network.label} "
        f"after {CLAIM_ATTEMPTS} attempts"
    )


def _claim_address(
    conn: Connection,
    network: model.Network,
    address: netaddr.IPAddress,
    params: dict[str, Any],
) -> str:
    claimed = conn.execute(
        claims.address_claim(), {**params, "b_address": str(address)}
    ).scalar()
    if claimed is not None:
        return str(claimed)
    row = conn.execute(
        select(FIXED).where(
            FIXED.c.address == str(address), FIXED.c.deleted == 0
        )
    ).first()
    if row is None or row.network_id != network.id:
        raise exception.AddressOutOfRange(
            address=address, network=network.cidr
        )
    if row.reserved:
        raise exception.FixedIpReserved(address=address)
    raise exception.FixedIpAlreadyInUse(address=address)


def _bump(
    conn: Connection, network_ids: Sequence[int]
) -> dict[int, model.Network]:
    """Bump each network once (in id order: no PostgreSQL deadlock) and
    return the rows as they will be committed. Raises NetworkNotFound."""
    networks = {}
    for network_id in sorted(set(network_ids)):
        row = conn.execute(claims.bump_network(), {"b_id": network_id}).first()
        if row is None:
            raise exception.NetworkNotFound(network=network_id)
        networks[network_id] = rows.to_network(row)
    return networks


def _allocate_one(
    conn: Connection,
    instance: model.Instance,
    network: model.Network,
    req: VifRequest,
) -> model.NetworkInfo:
    vif = _insert_vif(conn, instance.uuid, req)
    params = claims.claim_params(network.id, instance.uuid, vif.id, rows.now())
    if req.address is not None:
        address = _claim_address(conn, network, req.address, params)
    else:
        address = _claim_pool(conn, network, params)
    shards.assign(conn, network.id, address)
    LOG.info(
        "allocated %s (%s) on network %s to instance %s",
        address,
        mac.format_mac(vif.address),
        network.id,
        instance.uuid,
    )
    return model.NetworkInfo(
        instance=instance,
        vif=vif,
        network=network,
        address=netaddr.IPAddress(address),
    )


def allocate(
    conn: Connection, instance: model.Instance, requests: Sequence[VifRequest]
) -> list[model.NetworkInfo]:
    """Create the VIFs and claim their addresses inside ``conn``'s
    transaction, bumping each network's generation first (on PostgreSQL
    that row lock also serialises claims per network). Each
    ``info.network.generation`` is the generation this commit makes."""
    networks = _bump(conn, [r.network_id for r in requests])
    # Last, after the network rows (one lock order on PostgreSQL): a new
    # instance or address changes its host's chains and group members.
    secgroups.bump(conn, [instance.uuid])
    return [
        _allocate_one(conn, instance, networks[req.network_id], req)
        for req in requests
    ]


def instance_create_allocated(
    db: Database, spec: InstanceSpec, requests: Sequence[VifRequest]
) -> list[model.NetworkInfo]:
    """Create an instance with its VIFs and fixed IPs, all or nothing.

    Raises DuplicateInstance, MacAddressInUse (``exc.kwargs['mac']``),
    NoMoreFixedIps, AddressOutOfRange, FixedIpReserved,
    FixedIpAlreadyInUse; nothing is written when one is raised.
    """
    with db.write() as conn:
        instance = insert_instance(conn, spec)
        return allocate(conn, instance, requests)


def _live_instance(conn: Connection, instance_uuid: str) -> model.Instance:
    row = conn.execute(
        select(INSTANCES).where(
            INSTANCES.c.uuid == instance_uuid, INSTANCES.c.deleted == 0
        )
    ).first()
    if row is None:
        raise exception.InstanceNotFound(instance=instance_uuid)
    return rows.to_instance(row)


def allocate_fixed_ip(
    db: Database,
    *,
    instance_uuid: str,
    network_id: int,
    mac: netaddr.EUI,
    address: netaddr.IPAddress | None = None,
) -> model.NetworkInfo:
    """Add one VIF + fixed IP on ``network_id`` to an existing instance.

    Same guarantees and errors as :func:`instance_create_allocated`, plus
    InstanceNotFound and Conflict (already has a VIF on that network).
    """
    with db.write() as conn:
        instance = _live_instance(conn, instance_uuid)
        req = VifRequest(network_id=network_id, mac=mac, address=address)
        return allocate(conn, instance, [req])[0]


def network_info(db: Database, instance_uuid: str) -> list[model.NetworkInfo]:
    """The live VIFs of an instance with their address, in VIF order."""
    query = (
        select(VIFS, FIXED.c.address.label("fixed_address"))
        .join(
            FIXED,
            and_(
                FIXED.c.virtual_interface_id == VIFS.c.id, FIXED.c.deleted == 0
            ),
        )
        .where(VIFS.c.instance_uuid == instance_uuid, VIFS.c.deleted == 0)
        .order_by(VIFS.c.created_at, VIFS.c.id)
    )
    with db.read() as conn:
        instance = _live_instance(conn, instance_uuid)
        found = conn.execute(query).all()
        return [
            model.NetworkInfo(
                instance=instance,
                vif=rows.to_vif(row),
                network=rows.live_network(conn, row.network_id),
                address=netaddr.IPAddress(row.fixed_address),
            )
            for row in found
        ]


def _release_rows(conn: Connection, instance_uuid: str) -> list[Any]:
    query = (
        select(
            FIXED.c.id,
            FIXED.c.address,
            FIXED.c.leased,
            FIXED.c.network_id,
            FIXED.c.dhcp_shard,
            VIFS.c.address.label("mac"),
            NETWORKS.c.bridge,
        )
        .join(NETWORKS, NETWORKS.c.id == FIXED.c.network_id)
        .outerjoin(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .where(FIXED.c.instance_uuid == instance_uuid, FIXED.c.deleted == 0)
    )
    return list(conn.execute(query).all())


def _deallocate_row(conn: Connection, row: Any) -> model.FixedIpRelease:
    values: dict[str, Any] = {"allocated": False, "updated_at": rows.now()}
    if not row.leased:
        # LP 1180766: never leased, so no DHCP "del" will ever come.
        values.update(instance_uuid=None, virtual_interface_id=None)
    conn.execute(update(FIXED).where(FIXED.c.id == row.id).values(**values))
    return model.FixedIpRelease(
        address=netaddr.IPAddress(row.address),
        mac=netaddr.EUI(row.mac) if row.mac else None,
        network_id=row.network_id,
        bridge=row.bridge,
        leased=bool(row.leased),
    )


def _disassociate_floating(conn: Connection, fixed_ids: list[int]) -> None:
    """nova deallocate_for_instance, step 1: floating IPs leave a
    deallocated instance."""
    if not fixed_ids:
        return
    moved = conn.execute(
        update(FLOATING)
        .where(FLOATING.c.fixed_ip_id.in_(fixed_ids), FLOATING.c.deleted == 0)
        .values(fixed_ip_id=None, host=None, updated_at=rows.now())
    )
    if moved.rowcount:
        rows.bump_counter(conn, rows.RULES_COUNTER)


def deallocate_for_instance(
    db: Database, instance_uuid: str
) -> list[model.FixedIpRelease]:
    """Deallocate every fixed IP of an instance and soft-delete it.

    nova's state after ``deallocate_fixed_ip``: ``allocated=False``; leased
    addresses stay associated until the DHCP release ("del") or the
    stale timeout; never-leased ones are disassociated at once. Floating
    IPs are disassociated, VIFs and the instance soft-deleted, and the
    generations bumped, in one transaction. Raises InstanceNotFound.
    """
    when = rows.now()
    with db.write() as conn:
        instance = _live_instance(conn, instance_uuid)
        found = _release_rows(conn, instance.uuid)
        releases = [_deallocate_row(conn, row) for row in found]
        conn.execute(
            update(VIFS)
            .where(VIFS.c.instance_uuid == instance.uuid, VIFS.c.deleted == 0)
            .values(deleted=VIFS.c.id, deleted_at=when)
        )
        conn.execute(
            update(INSTANCES)
            .where(INSTANCES.c.id == instance.id)
            .values(deleted=instance.id, deleted_at=when)
        )
        rows.bump_generations(conn, (r.network_id for r in releases))
        shards.touch(conn, ((r.id, r.network_id, r.dhcp_shard) for r in found))
        secgroup_members.detach_all(conn, instance.uuid)
        live_migration.forget(conn, instance.uuid)
        # its chain goes, its addresses leave groups
        secgroups.bump(conn, [instance.uuid])
        _disassociate_floating(conn, [row.id for row in found])
    LOG.info(
        "deallocated %d fixed IPs of instance %s", len(releases), instance_uuid
    )
    return releases
