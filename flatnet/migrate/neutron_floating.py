"""PURE: nova's floating IPs as Neutron request bodies.

Sources: neutron-lib ``neutron_lib/api/definitions/l3.py`` (floatingip:
``floating_network_id``, ``floating_ip_address``, ``port_id``,
``fixed_ip_address``, ``project_id``; router:
``external_gateway_info``), ``neutron_lib/api/definitions/
external_net.py`` (``router:external``); Neutron
``neutron/db/l3_db.py`` (``_get_router_for_floatingip``: a floating IP
can be associated with a port only when the port's subnet is an
interface of a router whose gateway is on the floating network,
``ExternalGatewayForFloatingIPNotFound`` otherwise).

Per nova pool: an external flat network (named as the pool) and one
subnet spanning the pool's addresses with ``allocation_pools`` = the
addresses themselves, no DHCP and no gateway (nova never stored the
upstream router; set ``gateway_ip`` before loading); a router
``flatnet-<pool>`` with its gateway there and an interface on each
fixed subnet that has floating IPs of that pool (nova's network host
was that router: it held the gateway address and did the NAT).

Per floating IP allocated to a project or associated: a floatingip
body, with ``port_id`` (the stand-in :func:`port_ref` of the port of its
fixed address) and ``fixed_ip_address`` when associated. An address
with neither is only part of its pool. nova's ``auto_assigned`` has no
Neutron counterpart (nova released such addresses with the instance).
"""

from __future__ import annotations

import dataclasses
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from typing import Any

import netaddr

_NS = uuidlib.UUID("5d1a3f52-7c4e-4b1e-8f11-6e6f76612d66")
Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class FloatingInput:
    address: netaddr.IPAddress
    pool: str
    project_id: str | None = None
    fixed_address: netaddr.IPAddress | None = None
    #: (network uuid, MAC) of the port holding ``fixed_address``
    port: tuple[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class FloatingExport:
    networks: list[Body]
    subnets: list[Body]
    routers: list[Body]
    router_interfaces: list[Body]
    floatingips: list[Body]
    refs: dict[str, Body]
    notes: list[str]


def port_ref(network_uuid: str, mac: str) -> str:
    """The stand-in for the Neutron id of the port with ``mac``."""
    return str(uuidlib.uuid5(uuidlib.UUID(network_uuid), f"port:{mac}"))


def pool_ref(pool: str) -> str:
    return str(uuidlib.uuid5(_NS, f"floating-pool:{pool}"))


def pool_subnet_ref(pool: str) -> str:
    return str(uuidlib.uuid5(_NS, f"floating-pool-subnet:{pool}"))


def router_ref(pool: str) -> str:
    return str(uuidlib.uuid5(_NS, f"router:{pool}"))


def _pool_bodies(
    pool: str, addresses: list[netaddr.IPAddress], physnet: str
) -> tuple[Body, Body, Body]:
    cidr = netaddr.spanning_cidr(addresses)
    ranges = netaddr.IPSet(addresses).iter_ipranges()
    network = {"network": {
        "name": pool, "router:external": True, "shared": False,
        "admin_state_up": True, "provider:network_type": "flat",
        "provider:physical_network": physnet,
    }}  # fmt: skip
    subnet = {"subnet": {
        "network_id": pool_ref(pool), "name": f"{pool}-v4",
        "ip_version": 4, "cidr": str(cidr), "gateway_ip": None,
        "enable_dhcp": False,
        "allocation_pools": [
            {"start": str(netaddr.IPAddress(r.first)),
             "end": str(netaddr.IPAddress(r.last))} for r in ranges],
    }}  # fmt: skip
    router = {"router": {
        "name": f"flatnet-{pool}", "admin_state_up": True,
        "external_gateway_info": {
            "network_id": pool_ref(pool), "enable_snat": True},
    }}  # fmt: skip
    return network, subnet, router


def floatingip_body(floating: FloatingInput) -> Body | None:
    """The body, or None for an address nobody allocated."""
    body: Body = {
        "floating_network_id": pool_ref(floating.pool),
        "floating_ip_address": str(floating.address),
    }
    if floating.project_id:
        body["project_id"] = floating.project_id
    if floating.port is not None and floating.fixed_address is not None:
        body["port_id"] = port_ref(*floating.port)
        body["fixed_ip_address"] = str(floating.fixed_address)
    elif not floating.project_id:
        return None
    return {"floatingip": body}


def _interfaces(
    floating: Iterable[FloatingInput], subnets: Mapping[str, str]
) -> tuple[list[Body], list[str]]:
    """One router interface per (pool, fixed subnet) in use; a subnet
    can sit on one router only (its gateway address)."""
    wanted: dict[str, set[str]] = {}
    for f in floating:
        if f.port is not None:
            wanted.setdefault(subnets[f.port[0]], set()).add(f.pool)
    found, notes = [], []
    for subnet, pools in sorted(wanted.items()):
        first = sorted(pools)[0]
        found.append({"router_id": router_ref(first),
                      "body": {"subnet_id": subnet}})  # fmt: skip
        if len(pools) > 1:
            notes.append(
                f"subnet {subnet} has floating IPs of pools "
                f"{', '.join(sorted(pools))}: Neutron reaches only "
                f"{first}'s through the subnet's router"
            )
    return found, notes


def export_floating(
    floating: Iterable[FloatingInput],
    subnets: Mapping[str, str],
    physnet: str = "external",
) -> FloatingExport:
    """``subnets``: fixed network uuid -> its subnet stand-in."""
    items = sorted(floating, key=lambda f: (f.pool, int(f.address)))
    out = FloatingExport([], [], [], [], [], {}, [])
    pools: dict[str, list[netaddr.IPAddress]] = {}
    for f in items:
        pools.setdefault(f.pool, []).append(f.address)
    for pool, addresses in sorted(pools.items()):
        network, subnet, router = _pool_bodies(pool, addresses, physnet)
        made = (
            ("networks", network, pool_ref(pool)),
            ("subnets", subnet, pool_subnet_ref(pool)),
            ("routers", router, router_ref(pool)),
        )
        for kind, body, ref in made:
            bucket: list[Body] = getattr(out, kind)
            out.refs[ref] = {"kind": kind[:-1], "file": f"api/{kind}.json",
                             "index": len(bucket)}  # fmt: skip
            bucket.append(body)
    out.router_interfaces[:], notes = _interfaces(items, subnets)
    out.notes.extend(notes)
    for f in items:
        wanted = floatingip_body(f)
        if wanted is not None:
            out.floatingips.append(wanted)
    return out
