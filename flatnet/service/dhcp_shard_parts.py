"""What :class:`flatnet.service.dhcp_shards.ShardedDhcp` keeps per shard,
and the keys it watches them under (part of component ``dhcp``)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence

from flatnet.linux import dhcp_inform, journal
from flatnet.linux.dhcp_release import DhcpRelease
from flatnet.model import HostEntry, Lease, Network, ShardRead
from flatnet.plan import dhcp_shards as shard_plan
from flatnet.plan import dnsmasq as plan
from flatnet.service import dhcp_hostsdir as hostsdir
from flatnet.service import dhcp_releases, lease_guard
from flatnet.service.dhcp_keeper import (
    DhcpTuning,
    DnsmasqBackend,
    DnsmasqKeeper,
    Watch,
)

LOG = logging.getLogger(__name__)
_KEY_BASE = 1 << 16


def keeper_key(network_id: int, index: int) -> int:
    """The keeper key of a shard (negative: never a network id)."""
    return -(network_id * _KEY_BASE + index + 1)


def stop_single(
    keeper: DnsmasqKeeper, network: Network, proc: DnsmasqBackend, limit: int
) -> None:
    """Stop the single dnsmasq of a network that grew past ``limit``
    hosts (nothing if none runs); its keeper watch goes first."""
    keeper.unwatch(network.id)
    with keeper.lock(network.id):
        pid = proc.pid()
        if pid is not None:
            LOG.warning(
                "network %s: more than %d hosts; moving from one dnsmasq "
                "to shards (every lease is kept)",
                network.id,
                limit,
            )
            proc.stop(pid)


def network_of(key: int) -> int | None:
    """The network of a shard's keeper key (None for a network key)."""
    return (-key - 1) // _KEY_BASE if key < 0 else None


@dataclasses.dataclass(slots=True)
class Shard:
    """What this daemon knows of one shard."""

    spec: shard_plan.ShardSpec
    state: hostsdir.NetState
    proc: dhcp_inform.ShardProcess
    release: DhcpRelease
    guard: lease_guard.JournalGuard
    members: set[str] = dataclasses.field(default_factory=set)
    addresses: dict[str, str] = dataclasses.field(default_factory=dict)
    linked: bool = False  # namespace and veth checked by this daemon
    # its hosts (address text -> entry) and their dhcp-host lines (MAC
    # text -> line) as read, the generation they were read at once
    # applied (None: not applied by this daemon: read it whole)
    hosts: dict[str, HostEntry] = dataclasses.field(default_factory=dict)
    wanted: dict[str, str] = dataclasses.field(default_factory=dict)
    names: dict[str, str] = dataclasses.field(default_factory=dict)  # DNS
    quiet: tuple[int, int] | None = None  # journal when found consumed
    generation: int | None = None
    fresh: bool = True  # made by this sync: its process must be checked


def watch(shard: Shard, lease_time: int) -> Watch:
    """What the keeper restarts for ``shard`` (from its files)."""
    return Watch(
        bridge=shard.proc.bridge,
        argv=list(shard.spec.argv),
        listen=str(shard.spec.address),
        snapshot="",  # dnsmasq runs no ``init`` for a Lua script
        marker=hostsdir.marker_path(shard.spec.paths),
        proc=shard.proc,
        lease_time=lease_time,
        helper=True,  # an error escaping the Lua hook kills it
    )


def releases(
    network: Network,
    shard: Shard,
    leased: Sequence[Lease],
    now: float,
    tuning: DhcpTuning,
) -> None:
    """dhcp_release of ``shard``'s stale leases (``leased``: its leases
    as read), run in its namespace on its ``eth0`` (the shard that holds
    the lease, by its stored shard)."""
    mine = [x for x in leased if x.shard == shard.spec.index]
    dhcp_releases.track(shard.state, shard.hosts.values(), mine)
    dhcp_releases.forget_released(network, shard.state, mine)
    dhcp_releases.drive(
        shard.release,
        dataclasses.replace(network, bridge=shard_plan.SHARD_IFNAME),
        shard.state,
        now,
        tuning.release_attempts,
        tuning.release_interval,
    )


def quiet(path: str) -> tuple[int, int] | None:
    """The journal's (inode, size), None if it or its rotated ``.old``
    is missing or present respectively: the journal is append-only, so
    the same inode and size as when an ingest consumed nothing means
    nothing new (a ``.old`` is always ingested: it is deleted only by an
    ingest, after a grace time)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    if os.path.exists(path + journal.OLD_SUFFIX):
        return None
    return found.st_ino, found.st_size


def _drop(shard: Shard, address: str, owner: dict[str, int]) -> None:
    entry = shard.hosts.pop(address, None)
    if entry is not None:
        mac = plan.mac_text(entry.mac)
        shard.wanted.pop(mac, None)
        shard.names.pop(mac, None)
        shard.addresses.pop(mac, None)
    if owner.get(address) == shard.spec.index:
        del owner[address]


def take(
    shards: Mapping[int, Shard],
    read: ShardRead,
    owner: dict[str, int],
    line: Callable[[HostEntry], str],
    name: Callable[[HostEntry], str],
) -> set[int]:
    """Merge ``read`` into the shards' hosts and lines (``owner``:
    address text -> shard index, of the whole network; ``line``: a
    host's dhcp-host line, ``name`` its DNS line). Returns the shards
    that changed, including one that lost an address claimed again in
    another shard."""
    touched = set(read.generations)
    for index in sorted(read.generations):
        shard = shards[index]
        if index in read.complete:
            for address in list(shard.hosts):
                _drop(shard, address, owner)
        for gone in read.removed[index]:
            _drop(shard, str(gone), owner)
        for entry in read.entries[index]:
            address = str(entry.address)
            before = owner.get(address)
            if before is not None and before in shards:
                touched.add(before)
                _drop(shards[before], address, owner)
            mac = plan.mac_text(entry.mac)
            shard.hosts[address] = entry
            shard.wanted[mac] = line(entry)
            shard.names[mac] = name(entry)
            shard.addresses[mac] = address
            owner[address] = index
    return touched
