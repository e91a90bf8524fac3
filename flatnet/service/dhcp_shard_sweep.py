"""Shards left behind while no daemon ran (part of component ``dhcp``).

A sharded network deleted (or moved to another host, or its DHCP
disabled) while ``flatnet-network`` was down keeps its shards on this
host: namespaces ``fn-<br>-s<k>``, veths, the bridge-family nft table,
the shards' dnsmasq and the DNS-only one. The daemon knows only the
networks it served since it started, so its first poll looks them up in
the database (deleted networks and their ``dhcp_shards`` rows stay) and
removes those it finds here (:meth:`ShardedDhcp.remove`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.linux import netlink
from flatnet.model import DhcpShard, Network
from flatnet.plan import dhcp_shards as shard_plan
from flatnet.service.dhcp_shards import ShardedDhcp

LOG = logging.getLogger(__name__)


def _present(
    networks_path: str, network: Network, shards: Sequence[DhcpShard]
) -> bool:
    """True if anything of ``network``'s shards seems to run here."""
    bridge = network.bridge
    if os.path.exists(shard_plan.dns_pid_path(networks_path, bridge)):
        return True
    return any(
        netlink.netns_exists(shard_plan.shard_netns(bridge, s.index))
        or os.path.exists(
            shard_plan.shard_paths(networks_path, bridge, s.index).pid
        )
        for s in shards
    )


def sweep(
    db: db_api.Database,
    sharded: ShardedDhcp,
    serves: Callable[[Network], bool],
) -> bool:
    """Remove the shards found here of every sharded network this host
    does not serve (a bridge of a network it serves is never touched);
    True if none is left (a failure is logged, retried at the next
    call)."""
    kept = {n.bridge for n in db_api.network_list(db) if serves(n)}
    done = True
    np = sharded.settings.networks_path
    for network, deleted, shards in db_api.sharded_networks(db):
        if network.bridge in kept or not _present(np, network, shards):
            continue
        LOG.warning(
            "network %s (%s, %s): removing its DHCP shards left here",
            network.id,
            network.bridge,
            "deleted" if deleted else "not served here",
        )
        try:
            sharded.remove(network, shards)
        except exception.FlatnetError as exc:
            LOG.warning("network %s: shard teardown: %s", network.id, exc)
            done = False
    return done
