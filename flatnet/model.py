"""Typed value objects shared by every layer (frozen, slotted, no I/O).

The DB API returns these, the planners consume them, and the CLI prints
them. netaddr types are used for addresses so that formatting is explicit.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence

import netaddr


@dataclasses.dataclass(frozen=True, slots=True)
class Network:
    """A flat network as stored in the database."""

    id: int
    uuid: str
    label: str
    cidr: netaddr.IPNetwork
    gateway: netaddr.IPAddress | None
    dhcp_server: netaddr.IPAddress | None
    dhcp_start: netaddr.IPAddress | None
    broadcast: netaddr.IPAddress
    netmask: netaddr.IPAddress
    bridge: str
    bridge_interface: str | None
    dns1: netaddr.IPAddress | None = None
    dns2: netaddr.IPAddress | None = None
    mtu: int | None = None
    multi_host: bool = False
    host: str | None = None
    enable_dhcp: bool = True
    share_address: bool = False
    project_id: str | None = None
    priority: int | None = None
    generation: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Instance:
    """What flatnet knows of an instance (enough for DHCP and metadata)."""

    id: int
    uuid: str
    hostname: str
    display_name: str
    host: str | None = None
    project_id: str | None = None
    launched_on: str | None = None
    created_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Vif:
    """A virtual interface: one MAC of one instance on one network."""

    id: int
    uuid: str
    address: netaddr.EUI
    network_id: int
    instance_uuid: str


@dataclasses.dataclass(frozen=True, slots=True)
class FixedIp:
    """One address row of a network, with nova's lifecycle flags."""

    id: int
    address: netaddr.IPAddress
    network_id: int
    instance_uuid: str | None
    virtual_interface_id: int | None
    allocated: bool
    leased: bool
    reserved: bool
    host: str | None = None
    updated_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class HostEntry:
    """One dnsmasq dhcp-host line: who gets which address under what name."""

    mac: netaddr.EUI
    address: netaddr.IPAddress
    hostname: str
    vif_id: int | None = None
    # True when this is the instance's first VIF (lowest id): the one that
    # gets the default route with use_single_default_gateway (nova
    # linux_net.get_dhcp_opts).
    default_route: bool = True
    # The DHCP shard that serves it (sharded networks only).
    shard: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DhcpShard:
    """One dnsmasq of a sharded network and its reserved address."""

    network_id: int
    index: int
    address: netaddr.IPAddress
    generation: int = 0  # what it serves changed (db/shards.bump)


@dataclasses.dataclass(frozen=True, slots=True)
class Lease:
    """A lease as dnsmasq's ``init`` wants it (leased fixed IPs)."""

    mac: netaddr.EUI
    address: netaddr.IPAddress
    hostname: str | None
    shard: int | None = None  # the DHCP shard holding it (if sharded)


@dataclasses.dataclass(frozen=True, slots=True)
class ShardRead:
    """What changed in some DHCP shards of a network, read in one
    transaction with the generations it was read at. Every dict is keyed
    by the shard indexes that were read; a shard in ``complete`` was read
    whole (``entries`` are all its hosts), any other only its rows
    changed since the generation asked (``entries`` new or changed
    hosts, ``removed`` addresses that are no longer hosts)."""

    generations: dict[int, int]
    complete: frozenset[int]
    entries: dict[int, list[HostEntry]]  # address order
    removed: dict[int, list[netaddr.IPAddress]]
    #: leases of addresses that are not hosts (deallocated, still leased:
    #: to be released by that shard), in address order
    leased: dict[int, list[Lease]]

    @classmethod
    def full(
        cls,
        shards: Sequence[DhcpShard],
        entries: Iterable[HostEntry],
        leased: Iterable[Lease],
    ) -> ShardRead:
        """Every shard of ``shards`` read whole (hosts and leases without
        a valid shard are served by none)."""
        generations = {s.index: s.generation for s in shards}
        read = cls(generations, frozenset(generations), {}, {}, {})
        for k in generations:
            read.entries[k], read.removed[k], read.leased[k] = [], [], []
        hosts = set()
        for entry in sorted(entries, key=_address):
            if entry.shard in read.entries:
                read.entries[entry.shard].append(entry)
                hosts.add((entry.address, entry.mac))
        for lease in sorted(leased, key=_address):
            stale = (lease.address, lease.mac) not in hosts
            if lease.shard in read.leased and stale:
                read.leased[lease.shard].append(lease)
        return read


def _address(item: HostEntry | Lease) -> netaddr.IPAddress:
    return item.address


@dataclasses.dataclass(frozen=True, slots=True)
class FloatingIp:
    """A floating (public) address and, if associated, its fixed address."""

    id: int
    address: netaddr.IPAddress
    pool: str
    interface: str | None
    fixed_address: netaddr.IPAddress | None = None
    instance_uuid: str | None = None
    project_id: str | None = None
    host: str | None = None
    auto_assigned: bool = False
    instance_hostname: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkInfo:
    """What ``instance create`` and the compute hooks return per VIF."""

    instance: Instance
    vif: Vif
    network: Network
    address: netaddr.IPAddress
    floating_addresses: tuple[netaddr.IPAddress, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class FixedIpView:
    """One row of ``fixed list``: the address and who holds it."""

    address: netaddr.IPAddress
    network_id: int
    network_cidr: netaddr.IPNetwork
    network_label: str
    allocated: bool
    leased: bool
    reserved: bool
    instance_uuid: str | None = None
    hostname: str | None = None
    host: str | None = None
    mac: netaddr.EUI | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FixedIpRelease:
    """A deallocated address whose DHCP lease a host may have to release."""

    address: netaddr.IPAddress
    mac: netaddr.EUI | None
    network_id: int
    bridge: str
    leased: bool


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseEvent:
    """One dnsmasq --dhcp-script event: ``add``, ``old`` or ``del``."""

    action: str
    mac: netaddr.EUI | None
    address: netaddr.IPAddress
    hostname: str | None = None
