"""ShardedDhcp without processes (issue 12): a shard journal is ingested
by every poll unless it is exactly as it was when an ingest last found
nothing new (80 shards cost 80 database reads per loop otherwise); the
rows read are merged into the shards' hosts (``parts.take``)."""

from __future__ import annotations

import netaddr

from flatnet.linux import journal
from flatnet.model import DhcpShard, HostEntry, Network, ShardRead
from flatnet.plan import dhcp_shards as shard_plan
from flatnet.plan import dnsmasq as plan
from flatnet.service import dhcp_shard_parts as parts
from flatnet.service.dhcp_keeper import DhcpTuning, DnsmasqKeeper
from flatnet.service.dhcp_shards import ShardedDhcp

CIDR = netaddr.IPNetwork("10.77.0.0/24")


def _network() -> Network:
    return Network(
        id=7,
        uuid="u7",
        label="big",
        cidr=CIDR,
        gateway=netaddr.IPAddress("10.77.0.1"),
        dhcp_server=netaddr.IPAddress("10.77.0.1"),
        dhcp_start=netaddr.IPAddress("10.77.0.2"),
        broadcast=CIDR.broadcast,
        netmask=CIDR.netmask,
        bridge="brq",
        bridge_interface=None,
    )


def _rig(tmp_path):
    settings = plan.DhcpSettings(
        networks_path=str(tmp_path), dhcpbridge="/bin/true"
    )
    dhcp = ShardedDhcp(settings, DhcpTuning(), DnsmasqKeeper(interval=0))
    network = _network()
    rows = [DhcpShard(7, 0, netaddr.IPAddress("10.77.0.254"))]
    spec = shard_plan.sharded_plan(network, settings, rows).shards[0]
    shard = dhcp._shard(network, spec)
    return dhcp, shard.spec.paths.events


class _Ingest:
    """What the reconciler's ingest returns: bytes consumed per journal,
    None when it failed; counts the journals it was given."""

    def __init__(self) -> None:
        self.calls = 0
        self.answers: list[int | None] = []

    def __call__(self, paths: list[str]) -> dict[str, int | None]:
        self.calls += len(paths)
        return {p: self.answers.pop(0) if self.answers else 0 for p in paths}


def test_an_unchanged_consumed_journal_is_not_read_again(tmp_path) -> None:
    dhcp, events = _rig(tmp_path)
    with open(events, "w", encoding="utf-8") as handle:
        handle.write("add fa:16:3e:00:00:01 10.77.0.5\n")
    ingest = _Ingest()
    ingest.answers = [33]  # the first poll consumes the line
    dhcp.poll(7, ingest)
    dhcp.poll(7, ingest)  # nothing new: found consumed
    assert ingest.calls == 2
    dhcp.poll(7, ingest)
    dhcp.poll(7, ingest)
    assert ingest.calls == 2  # unchanged since: skipped
    with open(events, "a", encoding="utf-8") as handle:
        handle.write("old fa:16:3e:00:00:01 10.77.0.5\n")
    dhcp.poll(7, ingest)
    assert ingest.calls == 3  # it grew


def test_a_failed_ingest_is_retried_and_a_rotated_journal_read(
    tmp_path,
) -> None:
    dhcp, events = _rig(tmp_path)
    with open(events, "w", encoding="utf-8") as handle:
        handle.write("add fa:16:3e:00:00:01 10.77.0.5\n")
    ingest = _Ingest()
    ingest.answers = [None, None]  # e.g. the database was locked
    dhcp.poll(7, ingest)
    dhcp.poll(7, ingest)
    dhcp.poll(7, ingest)  # succeeds, nothing new
    dhcp.poll(7, ingest)
    assert ingest.calls == 3
    with open(events + journal.OLD_SUFFIX, "w", encoding="utf-8") as handle:
        handle.write("del fa:16:3e:00:00:01 10.77.0.5\n")
    dhcp.poll(7, ingest)
    dhcp.poll(7, ingest)
    assert ingest.calls == 5  # a .old is always read (deleted by an ingest)


def test_a_missing_journal_is_always_tried(tmp_path) -> None:
    dhcp, events = _rig(tmp_path)
    ingest = _Ingest()
    dhcp.poll(7, ingest)
    dhcp.poll(7, ingest)
    assert ingest.calls == 2


def _entry(last: int, shard: int, name: str = "") -> HostEntry:
    return HostEntry(
        mac=netaddr.EUI(0xFA163E770000 + last + (0x100 if name else 0)),
        address=netaddr.IPAddress(f"10.77.0.{last}"),
        hostname=name or f"vm{last}",
        shard=shard,
    )


def test_take_merges_rows_and_moves_a_reclaimed_address(tmp_path) -> None:
    """``parts.take``: a whole read replaces a shard's hosts, a delta
    adds, changes and removes; an address claimed again in another shard
    (its deallocation not seen yet) leaves its old shard, which is
    reported changed."""
    settings = plan.DhcpSettings(
        networks_path=str(tmp_path), dhcpbridge="/bin/true"
    )
    dhcp = ShardedDhcp(settings, DhcpTuning(), DnsmasqKeeper(interval=0))
    rows = [
        DhcpShard(7, k, netaddr.IPAddress(f"10.77.0.{254 - k}"))
        for k in range(2)
    ]
    net = _network()
    specs = shard_plan.sharded_plan(net, settings, rows).shards
    shards = {s.index: dhcp._shard(net, s) for s in specs}
    owner: dict[str, int] = {}

    def take(read: ShardRead) -> set[int]:
        return parts.take(shards, read, owner, str, repr)

    full = ShardRead.full(rows, [_entry(5, 0), _entry(6, 1)], [])
    assert take(full) == {0, 1}
    assert set(shards[0].hosts) == {"10.77.0.5"}
    delta = ShardRead(
        {1: 3},
        frozenset(),
        {1: [_entry(5, 1, "again"), _entry(7, 1)]},
        {1: [netaddr.IPAddress("10.77.0.6")]},
        {1: []},
    )
    assert take(delta) == {0, 1}  # shard 0 lost .5
    assert shards[0].hosts == {}
    assert shards[0].wanted == {}
    assert set(shards[1].hosts) == {"10.77.0.5", "10.77.0.7"}
    assert shards[1].hosts["10.77.0.5"].hostname == "again"
    assert owner == {"10.77.0.5": 1, "10.77.0.7": 1}
    assert len(shards[1].wanted) == len(shards[1].names) == 2
