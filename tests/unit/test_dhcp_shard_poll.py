"""A shard journal is ingested by every poll unless it is exactly as it
was when an ingest last found nothing new (issue 12: 80 shards cost 80
database reads per daemon loop otherwise)."""

from __future__ import annotations

import netaddr

from flatnet.linux import journal
from flatnet.model import DhcpShard, Network
from flatnet.plan import dhcp_shards as shard_plan
from flatnet.plan import dnsmasq as plan
from flatnet.service.dhcp_keeper import DhcpTuning, DnsmasqKeeper
from flatnet.service.dhcp_shards import ShardedDhcp

CIDR = netaddr.IPNetwork("10.77.0.0/24")


def _rig(tmp_path):
    settings = plan.DhcpSettings(
        networks_path=str(tmp_path), dhcpbridge="/bin/true"
    )
    dhcp = ShardedDhcp(settings, DhcpTuning(), DnsmasqKeeper(interval=0))
    network = Network(
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
    rows = [DhcpShard(7, 0, netaddr.IPAddress("10.77.0.254"))]
    spec = shard_plan.sharded_plan(network, settings, rows).shards[0]
    shard = dhcp._shard(network, spec)
    return dhcp, shard.spec.paths.events


class _Ingest:
    """What the reconciler's ingest returns: bytes consumed, None when
    it failed; records each call."""

    def __init__(self) -> None:
        self.calls = 0
        self.answers: list[int | None] = []

    def __call__(self, path: str) -> int | None:
        self.calls += 1
        return self.answers.pop(0) if self.answers else 0


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
