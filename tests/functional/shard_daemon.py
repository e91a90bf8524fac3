"""A stand-in daemon for the kill -9 test: syncs a sharded network with
``ShardedDhcp`` in small batches, as flatnet-network would.

Usage: python -m tests.functional.shard_daemon <json> where the JSON
has networks_path, host, bridge, shards, hosts ([last octet, shard]).
"""

from __future__ import annotations

import json
import sys

import netaddr

from flatnet.model import DhcpShard
from flatnet.plan import dnsmasq as plan
from flatnet.service.dhcp_keeper import DhcpTuning, DnsmasqKeeper
from flatnet.service.dhcp_shards import ShardedDhcp
from tests.functional.shard_site import entry, network


def main(raw: str) -> int:
    spec = json.loads(raw)
    settings = plan.DhcpSettings(
        networks_path=spec["networks_path"],
        dhcpbridge="/bin/true",
        dhcp_lease_time=120,
    )
    tuning = DhcpTuning(keeper_interval=0, hostsdir_batch_max=4)
    dhcp = ShardedDhcp(
        settings, tuning, DnsmasqKeeper(interval=0), host_netns=spec["host"]
    )
    rows = [
        DhcpShard(7, k, netaddr.IPAddress(f"10.77.0.{254 - k}"))
        for k in range(spec["shards"])
    ]
    hosts = [entry(last, shard) for last, shard in spec["hosts"]]
    live = dhcp.sync(network(spec["bridge"]), rows, hosts, [])
    return 0 if live else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
