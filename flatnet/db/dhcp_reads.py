"""What dnsmasq serves, read from the database: a network's hosts
(``host_entries``) and its leased addresses (``leases``, and the query
behind it for :mod:`flatnet.db.dhcp_delta`).

Private to :mod:`flatnet.db`; use :mod:`flatnet.db.api`.
"""

from __future__ import annotations

from typing import Any

import netaddr
from sqlalchemy import Select, func, select, true

from flatnet import model
from flatnet.db.engine import Database
from flatnet.db.rows import FIXED, INSTANCES, VIFS


def host_entries(
    db: Database, network_id: int, host: str | None = None
) -> list[model.HostEntry]:
    """The allocated addresses of a network (dnsmasq dhcp-host lines),
    in address order.

    ``host`` limits them to instances on that host (nova's ``update_dhcp``
    does so for multi_host networks). ``default_route`` is set on each
    instance's first live VIF (lowest id, across all networks), the only
    one that gets a router with ``use_single_default_gateway``.
    """
    first_vif = (
        select(VIFS.c.instance_uuid, func.min(VIFS.c.id).label("vif_id"))
        .where(VIFS.c.deleted == 0)
        .group_by(VIFS.c.instance_uuid)
        .subquery()
    )
    query = (
        select(
            FIXED.c.address,
            VIFS.c.address.label("mac"),
            VIFS.c.id,
            INSTANCES.c.hostname,
            first_vif.c.vif_id.label("first_vif"),
            FIXED.c.dhcp_shard,
        )
        .join(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .join(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .outerjoin(
            first_vif, first_vif.c.instance_uuid == FIXED.c.instance_uuid
        )
        .where(
            FIXED.c.network_id == network_id,
            FIXED.c.deleted == 0,
            FIXED.c.allocated == true(),
        )
    )
    if host is not None:
        query = query.where(INSTANCES.c.host == host)
    with db.read() as conn:
        found = conn.execute(query).all()
    return sorted(map(entry_of, found), key=lambda e: e.address)


def entry_of(r: Any) -> model.HostEntry:
    """A host row (address, mac, id, hostname, first_vif, dhcp_shard)."""
    return model.HostEntry(
        mac=netaddr.EUI(r.mac),
        address=netaddr.IPAddress(r.address),
        hostname=r.hostname,
        vif_id=r.id,
        default_route=r.first_vif in (None, r.id),
        shard=r.dhcp_shard,
    )


def leased_query(network_id: int) -> Select[Any]:
    """The leased addresses of a network with their MAC, host name and
    shard (:func:`lease_of` makes each row a Lease)."""
    return (
        select(
            FIXED.c.address,
            VIFS.c.address.label("mac"),
            INSTANCES.c.hostname,
            FIXED.c.dhcp_shard,
        )
        .join(VIFS, VIFS.c.id == FIXED.c.virtual_interface_id)
        .outerjoin(INSTANCES, INSTANCES.c.uuid == FIXED.c.instance_uuid)
        .where(
            FIXED.c.network_id == network_id,
            FIXED.c.deleted == 0,
            FIXED.c.leased == true(),
        )
    )


def lease_of(r: Any) -> model.Lease:
    return model.Lease(
        mac=netaddr.EUI(r.mac),
        address=netaddr.IPAddress(r.address),
        hostname=r.hostname,
        shard=r.dhcp_shard,
    )


def leases(db: Database, network_id: int) -> list[model.Lease]:
    """Leased addresses of a network (what dnsmasq ``init`` reports),
    including deallocated ones still waiting for their release."""
    with db.read() as conn:
        found = conn.execute(leased_query(network_id)).all()
    return sorted(map(lease_of, found), key=lambda lease: lease.address)
