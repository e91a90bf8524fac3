"""The metadata service's reads: source address -> InstanceMetadata.

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.

:func:`instance_metadata` is one read transaction (four short queries)
answering "which live instance holds this *allocated* fixed IP, and what
does the metadata service tell it" (nova ``InstanceMetadata.__init__``
and ``get_metadata_by_address``: ``fixed_ip_get_by_address``, then the
instance, its network info, floating IPs and security groups).

:func:`metadata_generation` is the cheap "has anything changed" value
the server polls to drop its cache. It reuses the generations that
already move in the same transaction as every change that alters an
answer: ``networks.generation`` (allocation, deallocation, lease
release, fixed IP disassociation) and the ``generations`` table
(``rules`` for floating IP association; per-instance scopes of the
compute side, e.g. security group membership). Creating an instance
without addresses changes no answer (nobody can be identified by it).

User data is stored as nova stored it: base64 text in
``instances.user_data`` (nova's API took base64 and kept it so), so a
nova database's rows are served unchanged; it is decoded here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from typing import Any

from sqlalchemy import Connection, and_, func, select, true

from flatnet.db import models
from flatnet.db.engine import Database
from flatnet.db.rows import (
    FIXED,
    FLOATING,
    GENERATIONS,
    INSTANCES,
    NETWORKS,
    VIFS,
)
from flatnet.plan.metadata import (
    InstanceMetadata,
    MetadataVif,
    ec2_instance_id,
)

LOG = logging.getLogger(__name__)
SECGROUPS = models.SECURITY_GROUPS
SGIA = models.SECURITY_GROUP_INSTANCES
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def reservation_id(instance_uuid: str) -> str:
    """``r-`` and 8 characters of ``[0-9a-z]`` (nova's
    ``utils.generate_uid('r')`` shape), derived from the instance uuid:
    flatnet has no boot requests to number, and a stable value is what
    cloud-init needs."""
    digest = int.from_bytes(hashlib.sha256(instance_uuid.encode()).digest())
    chars = []
    for _ in range(8):
        digest, rest = divmod(digest, 36)
        chars.append(_BASE36[rest])
    return "r-" + "".join(chars)


def decode_user_data(stored: str | None, instance_uuid: str) -> bytes | None:
    """The bytes of base64 ``stored``; None (and a warning) if it is not
    base64, as nova's metadata handler could not serve it either."""
    if not stored:
        return None
    try:
        return base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        LOG.warning("instance %s: user_data is not base64", instance_uuid)
        return None


def _instance_row(conn: Connection, fixed_ip: str) -> Any:
    query = (
        select(INSTANCES)
        .join(FIXED, FIXED.c.instance_uuid == INSTANCES.c.uuid)
        .where(
            FIXED.c.address == fixed_ip,
            FIXED.c.deleted == 0,
            FIXED.c.allocated == true(),
            INSTANCES.c.deleted == 0,
        )
    )
    return conn.execute(query).first()


def _vif_rows(conn: Connection, instance_uuid: str) -> list[Any]:
    """The instance's VIFs with address and network, in
    get_instance_nw_info order (VIF creation)."""
    query = (
        select(
            VIFS.c.uuid.label("vif_uuid"),
            VIFS.c.address.label("mac"),
            FIXED.c.id.label("fixed_id"),
            FIXED.c.address,
            NETWORKS.c.uuid.label("network_uuid"),
            NETWORKS.c.netmask,
            NETWORKS.c.gateway,
            NETWORKS.c.dns1,
            NETWORKS.c.dns2,
            NETWORKS.c.mtu,
            NETWORKS.c.enable_dhcp,
        )
        .join(
            FIXED,
            and_(
                FIXED.c.virtual_interface_id == VIFS.c.id,
                FIXED.c.deleted == 0,
                FIXED.c.allocated == true(),
            ),
        )
        .join(NETWORKS, NETWORKS.c.id == VIFS.c.network_id)
        .where(VIFS.c.instance_uuid == instance_uuid, VIFS.c.deleted == 0)
        .order_by(VIFS.c.created_at, VIFS.c.id)
    )
    return list(conn.execute(query).all())


def _floating(conn: Connection, fixed_ids: list[int]) -> str | None:
    """nova ``get_ec2_metadata``: the first floating IP of the fixed IPs
    in order."""
    if not fixed_ids:
        return None
    found = conn.execute(
        select(FLOATING.c.fixed_ip_id, FLOATING.c.address)
        .where(FLOATING.c.fixed_ip_id.in_(fixed_ids), FLOATING.c.deleted == 0)
        .order_by(FLOATING.c.id)
    ).all()
    by_fixed = {row.fixed_ip_id: row.address for row in reversed(found)}
    return next((by_fixed[f] for f in fixed_ids if f in by_fixed), None)


def _security_groups(conn: Connection, instance_uuid: str) -> tuple[str, ...]:
    names = conn.execute(
        select(SECGROUPS.c.name)
        .join(SGIA, SGIA.c.security_group_id == SECGROUPS.c.id)
        .where(
            SGIA.c.instance_uuid == instance_uuid,
            SGIA.c.deleted == 0,
            SECGROUPS.c.deleted == 0,
        )
        .order_by(SECGROUPS.c.id)
    ).scalars()
    return tuple(names) or ("default",)


def _vif(row: Any) -> MetadataVif:
    return MetadataVif(
        vif_id=row.vif_uuid,
        mac=row.mac,
        network_id=row.network_uuid,
        address=row.address,
        netmask=row.netmask or "",
        gateway=row.gateway or None,
        dns=tuple(d for d in (row.dns1, row.dns2) if d),
        dhcp=bool(row.enable_dhcp),
        mtu=row.mtu,
    )


def instance_metadata(
    db: Database,
    fixed_ip: str,
    *,
    domain: str = "novalocal",
    availability_zone: str = "nova",
) -> InstanceMetadata | None:
    """What the metadata service tells the instance whose allocated fixed
    IP is ``fixed_ip``, or None when no live instance has it.
    ``domain`` is nova's dhcp_domain, ``availability_zone`` the AZ of
    instances that name none (nova default_availability_zone)."""
    with db.read() as conn:
        inst = _instance_row(conn, fixed_ip)
        if inst is None:
            return None
        vifs = _vif_rows(conn, inst.uuid)
        floating = _floating(conn, [v.fixed_id for v in vifs])
        groups = _security_groups(conn, inst.uuid)
    keys = {inst.key_name: inst.key_data} if inst.key_data else {}
    return InstanceMetadata(
        uuid=inst.uuid,
        ec2_id=ec2_instance_id(inst.id),
        hostname=inst.hostname,
        fixed_ip=vifs[0].address if vifs else fixed_ip,
        reservation_id=reservation_id(inst.uuid),
        domain=domain,
        display_name=inst.display_name or "",
        floating_ip=floating,
        launch_index=inst.launch_index or 0,
        availability_zone=inst.availability_zone or availability_zone,
        security_groups=groups,
        public_keys={k or "key": v for k, v in keys.items()},
        user_data=decode_user_data(inst.user_data, inst.uuid),
        project_id=inst.project_id or "",
        vifs=tuple(_vif(v) for v in vifs),
    )


def metadata_generation(db: Database) -> int:
    """Changes (in practice: grows) whenever an answer of
    :func:`instance_metadata` may have changed; one query."""
    networks = select(func.coalesce(func.sum(NETWORKS.c.generation), 0))
    scopes = select(func.coalesce(func.sum(GENERATIONS.c.generation), 0))
    with db.read() as conn:
        total = conn.execute(
            select(networks.scalar_subquery() + scopes.scalar_subquery())
        ).scalar()
    return int(total or 0)
