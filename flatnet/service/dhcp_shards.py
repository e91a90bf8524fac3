"""A large network served by several dnsmasq, DNS apart (part of
component ``dhcp``; the plan is :mod:`flatnet.plan.dhcp_shards`).

:meth:`ShardedDhcp.sync` applies a sharded network's full desired
state, in this order:

1. each shard's namespace and veth (idempotent);
2. the bridge nftables table: whole and atomic when this daemon first
   syncs the network (or adding fails), else only the new MACs. A MAC
   joins its set BEFORE its dhcp-host line is written anywhere;
3. the shared opts file, then per shard (under its keeper lock): start
   (all its hosts in its hosts file, its journal created 0600 first: the
   Lua hook records its lease events, see ``plan.dhcp_shards.hook_args``),
   a compaction + SIGHUP (a host removed or changed), or new hosts queued;
4. the queued hosts in hostsdir batches, at most ``inflight`` shards
   with an unconfirmed batch at a time (about as many as cores: all
   shards reading at once made them all slow together); a batch is
   confirmed by a DHCPINFORM for its last MAC (:mod:`linux.dhcp_inform`);
5. names for the DNS-only dnsmasq (new names in a ``--hostsdir`` file,
   a removal rewrites ``--addn-hosts`` and HUPs it); DHCP never waits
   for DNS.

The keeper thread watches each shard (and its Lua helper) under its own
key (:func:`keeper_key`): a dead shard is restarted alone."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence

import netaddr

from flatnet import exception
from flatnet.linux import dhcp_inform, files, netlink, nftables
from flatnet.linux.dhcp_release import DhcpRelease
from flatnet.model import DhcpShard, HostEntry, Lease, Network
from flatnet.plan import dhcp_shards as shard_plan
from flatnet.plan import dnsmasq as plan
from flatnet.service import dhcp_dns, lease_guard
from flatnet.service import dhcp_hostsdir as hostsdir
from flatnet.service import dhcp_releases as releases
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


class ShardedDhcp:
    """Every sharded network of this host (see module doc)."""

    def __init__(
        self,
        settings: plan.DhcpSettings,
        tuning: DhcpTuning,
        keeper: DnsmasqKeeper,
        *,
        host_netns: str | None = None,
        inflight: int | None = None,
    ) -> None:
        self.settings = settings
        self.tuning = tuning
        self.keeper = keeper
        self.inflight = inflight or os.cpu_count() or 2
        self.clock: Callable[[], float] = time.monotonic
        self._shards: dict[tuple[int, int], Shard] = {}
        self._tables: set[int] = set()
        self._known: dict[int, tuple[Network, tuple[DhcpShard, ...]]] = {}
        self.place(host_netns)

    def place(self, host_netns: str | None) -> None:
        """Where the bridges live (None: here; tests: a namespace)."""
        self.host_netns = host_netns
        self.nft = nftables.Nft(host_netns)
        self.dns = dhcp_dns.DnsOnly(host_netns, self.tuning.served_timeout)

    # --- what the reconciler asks ---------------------------------------
    def shards_of(self, network_id: int) -> list[Shard]:
        return [
            s for (n, _k), s in sorted(self._shards.items()) if n == network_id
        ]

    def poll(
        self, network_id: int, ingest: Callable[[list[str]], int]
    ) -> bool:
        """Ingest the shards' journals (``ingest(paths)``: one call, one
        transaction), poll each journal's guard (reserve, lost events: a
        SIGHUP of that shard replays its leases); True if a shard is
        dead."""
        dead = False
        shards = self.shards_of(network_id)
        ingest([shard.spec.paths.events for shard in shards])
        for shard in shards:
            shard.guard.poll(shard.proc)
            dead |= shard.proc.pid() is None
        return dead

    # --- reconcile ------------------------------------------------------
    def sync(
        self,
        network: Network,
        rows: Sequence[DhcpShard],
        entries: Sequence[HostEntry],
        leased: Sequence[Lease],
    ) -> bool:
        """Apply ``network``'s sharded state; True once every shard
        serves every host. Raises HostNetworkError subclasses."""
        sharded = shard_plan.sharded_plan(network, self.settings, rows)
        self._known[network.id] = (network, tuple(rows))
        groups = shard_plan.by_shard(entries, len(rows))
        shards = [self._shard(network, s) for s in sharded.shards]
        for shard in shards:
            self._link(network, shard)
        self._steer(sharded, shards, groups)
        self._write_opts(network, entries, shards)
        hostsdir.check_access(self.settings.networks_path)
        live = True
        for shard in shards:
            live &= self._apply(network, shard, groups[shard.spec.index])
        live &= self._feed(network, shards)
        self.dns.sync(
            sharded, plan.dnsmasq_spec(network, self.settings), entries
        )
        for shard in shards:
            self._releases(network, shard, groups[shard.spec.index], leased)
        return live

    def _link(self, network: Network, shard: Shard) -> None:
        """Namespace and veth: checked once per shard and daemon, and
        again whenever its dnsmasq is not running (netlink sockets cost
        tens of ms each)."""
        if shard.linked and shard.proc.pid() is not None:
            return
        netlink.ensure_netns(shard.spec.netns)
        netlink.ensure_shard_link(
            self.host_netns,
            network.bridge,
            shard.spec.veth,
            shard.spec.netns,
            f"{shard.spec.address}/{shard.spec.prefixlen}",
        )
        shard.linked = True

    def _shard(self, network: Network, spec: shard_plan.ShardSpec) -> Shard:
        key = (network.id, spec.index)
        shard = self._shards.get(key)
        if shard is None or shard.spec != spec:
            proc = dhcp_inform.ShardProcess(
                f"{network.bridge}-s{spec.index}", spec.paths, spec.netns
            )
            shard = self._shards[key] = Shard(
                spec=spec,
                state=hostsdir.NetState(paths=spec.paths),
                proc=proc,
                release=DhcpRelease(netns=spec.netns),
                guard=lease_guard.JournalGuard(spec.paths.events, proc.bridge),
            )
        return shard

    def _steer(
        self,
        sharded: shard_plan.ShardedPlan,
        shards: list[Shard],
        groups: dict[int, list[HostEntry]],
    ) -> None:
        """MACs into their shard's set, before any host line is written."""
        table = sharded.table
        if sharded.network_id not in self._tables:  # whole, once per daemon
            members = {k: [e.mac for e in v] for k, v in groups.items()}
            self.nft.apply(table, shard_plan.nft_ruleset(sharded, members))
            for shard in shards:
                shard.members = {
                    plan.mac_text(m) for m in members[shard.spec.index]
                }
            self._tables.add(sharded.network_id)
            return
        text = ""
        for shard in shards:
            new = [
                e.mac
                for e in groups[shard.spec.index]
                if plan.mac_text(e.mac) not in shard.members
            ]
            text += shard_plan.nft_add_members(table, shard.spec.index, new)
            shard.members.update(plan.mac_text(m) for m in new)
        try:
            self.nft.apply(table, text)
        except exception.FirewallApplyError:  # e.g. deleted by hand
            LOG.warning("nft %s: adding failed, replacing the table", table)
            self._tables.discard(sharded.network_id)
            self._steer(sharded, shards, groups)

    def _write_opts(
        self,
        network: Network,
        entries: Sequence[HostEntry],
        shards: list[Shard],
    ) -> None:
        single = self.settings.use_single_default_gateway
        gateway = plan.opts_gateway(network, self.settings.share_dhcp_address)
        text = plan.opts_file(gateway, list(entries), single)
        if files.differs(shards[0].spec.paths.opts, text):
            for shard in shards:  # each shard must re-read it
                hostsdir.owe_reload(shard.state)
            files.replace_file(shards[0].spec.paths.opts, text)

    def _watch(self, network: Network, shard: Shard) -> Watch:
        watch = Watch(
            bridge=shard.proc.bridge,
            argv=list(shard.spec.argv),
            listen=str(shard.spec.address),
            snapshot="",  # dnsmasq runs no ``init`` for a Lua script
            marker=hostsdir.marker_path(shard.spec.paths),
            proc=shard.proc,
            lease_time=self.settings.dhcp_lease_time,
            helper=True,  # an error escaping the Lua hook kills it
        )
        self.keeper.watch(keeper_key(network.id, shard.spec.index), watch)
        return watch

    def _apply(
        self, network: Network, shard: Shard, entries: list[HostEntry]
    ) -> bool:
        """One shard's files and process (its keeper lock held)."""
        single = self.settings.use_single_default_gateway
        wanted = plan.host_lines(entries, self.settings.dhcp_domain, single)
        shard.addresses = {
            plan.mac_text(e.mac): str(e.address) for e in entries
        }
        state, proc = shard.state, shard.proc
        proc.probe = (
            (str(entries[0].address), entries[0].mac) if entries else None
        )
        with self.keeper.lock(keeper_key(network.id, shard.spec.index)):
            # watched only under the lock: the keeper never starts a
            # shard whose files this sync has not written yet
            watch = self._watch(network, shard)
            files.ensure_dir(state.paths.hostsdir)
            pid = proc.pid()
            if pid is not None and not proc.matches(pid, watch.argv):
                LOG.info("dnsmasq %s: command line changed", proc.bridge)
                proc.stop(pid)
                pid = None
            if state.main is None:
                state.main, state.hostsdir = hostsdir.load(state.paths)
            owed = hostsdir.reload_owed(state)
            limit = self.tuning.compact_files
            if pid is None:
                shard.guard.prepare()  # 0600 before the Lua hook makes it
                state.pending = []
                hostsdir.compact(state, wanted)
                state.starts += 1
                return self.keeper.start_locked(watch)
            if owed or hostsdir.needs_compaction(state, wanted, limit):
                state.pending = []
                hostsdir.compact(state, wanted)
                proc.reload(pid)
                state.reloads += 1
                live = proc.wait_served(
                    watch.listen, self.tuning.served_timeout
                )
                if live:
                    hostsdir.reload_done(state)
                return live
            hostsdir.queue_new(state, wanted)
            return True

    def _feed(self, network: Network, shards: list[Shard]) -> bool:
        """Write the queued hosts, at most ``inflight`` shards with an
        unconfirmed batch at a time."""
        live = True
        while busy := [s for s in shards if s.state.pending]:
            wave = busy[: self.inflight]
            written = []
            for shard in wave:
                key = keeper_key(network.id, shard.spec.index)
                with self.keeper.lock(key):
                    last = shard.state.pending[
                        : self.tuning.hostsdir_batch_max
                    ]
                    size = hostsdir.write_batch(
                        shard.state, self.tuning.hostsdir_batch_max
                    )
                    mac = last[size - 1][0]
                    shard.proc.probe = (shard.addresses[mac], netaddr.EUI(mac))
                    written.append(shard)
            for shard in written:
                live &= shard.proc.wait_served(
                    str(shard.spec.address), self.tuning.served_timeout
                )
        return live

    def _releases(
        self,
        network: Network,
        shard: Shard,
        entries: list[HostEntry],
        leased: Sequence[Lease],
    ) -> None:
        """dhcp_release of stale leases, run in the owner's namespace on
        its ``eth0`` (the shard that holds the lease, by its stored
        shard)."""
        mine = [x for x in leased if x.shard == shard.spec.index]
        releases.track(shard.state, entries, mine)
        releases.forget_released(network, shard.state, mine)
        releases.drive(
            shard.release,
            dataclasses.replace(network, bridge=shard_plan.SHARD_IFNAME),
            shard.state,
            self.clock(),
            self.tuning.release_attempts,
            self.tuning.release_interval,
        )

    # --- teardown -------------------------------------------------------
    def drop(self, network_id: int) -> bool:
        """Tear down the shards this daemon serves for ``network_id`` (it
        was deleted or is no longer served here), as :meth:`remove`;
        False if that failed (logged; retried at the next call)."""
        known = self._known.get(network_id)
        if known is None:
            return True
        LOG.info("network %s: removing its DHCP shards", network_id)
        try:
            self.remove(*known)
        except exception.FlatnetError as exc:
            LOG.warning("network %s: shard teardown: %s", network_id, exc)
            return False
        return True

    def remove(self, network: Network, rows: Sequence[DhcpShard]) -> None:
        """Stop every shard and the DNS-only server of ``network``;
        remove their namespaces, veths and nft table."""
        sharded = shard_plan.sharded_plan(network, self.settings, rows)
        for spec in sharded.shards:
            key = keeper_key(network.id, spec.index)
            self.keeper.unwatch(key)
            shard = self._shard(network, spec)
            with self.keeper.lock(key):
                pid = shard.proc.pid()
                if pid is not None:
                    shard.proc.stop(pid)
                netlink.delete_link(self.host_netns, spec.veth)
                netlink.delete_netns(spec.netns)
            self._shards.pop((network.id, spec.index), None)
        self._known.pop(network.id, None)
        self.dns.stop(sharded, plan.dnsmasq_spec(network, self.settings))
        self.nft.apply(
            sharded.table, shard_plan.nft_delete_table(sharded.table)
        )
        self._tables.discard(network.id)
