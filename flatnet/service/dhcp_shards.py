"""A large network served by several dnsmasq, DNS apart (part of
component ``dhcp``; the plan is :mod:`flatnet.plan.dhcp_shards`).

:meth:`ShardedDhcp.apply` merges what changed (``db.api.shard_read``,
see :meth:`ShardedDhcp.stale`) into what it applied, then, for the
shards that changed (all at its first sync), in this order:

1. each shard's namespace and veth (idempotent);
2. the bridge nftables table: whole and atomic when this daemon first
   syncs the network (or adding fails), else only the new MACs. A MAC
   joins its set BEFORE its dhcp-host line is written anywhere;
3. the shared opts file, then per shard (under its keeper lock): start
   (all its hosts in its hosts file, its journal created 0600 first for
   the Lua hook, ``plan.dhcp_shards.hook_args``), a compaction + SIGHUP
   (a host removed or changed), or new hosts queued;
4. the queued hosts in hostsdir batches, at most ``inflight`` shards
   with an unconfirmed batch at a time (about as many as cores: all
   shards reading at once made them all slow together); a batch is
   confirmed by a DHCPINFORM for its last MAC (:mod:`linux.dhcp_inform`);
5. names for the DNS-only dnsmasq (new: a ``--hostsdir`` file, removed:
   ``--addn-hosts`` rewritten and HUPed); DHCP never waits for DNS.

The keeper thread restarts a dead shard (or Lua helper) alone."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence

import netaddr

from flatnet import exception
from flatnet.linux import dhcp_inform, files, netlink, nftables
from flatnet.linux.dhcp_release import DhcpRelease
from flatnet.model import DhcpShard, HostEntry, Lease, Network, ShardRead
from flatnet.plan import dhcp_shards as shard_plan
from flatnet.plan import dnsmasq as plan
from flatnet.service import dhcp_dns, lease_guard
from flatnet.service import dhcp_hostsdir as hostsdir
from flatnet.service import dhcp_shard_parts as parts
from flatnet.service.dhcp_keeper import DhcpTuning, DnsmasqKeeper
from flatnet.service.dhcp_shard_parts import (
    Shard,
    keeper_key,
    network_of,
    stop_single,
)

LOG = logging.getLogger(__name__)
__all__ = ["ShardedDhcp", "keeper_key", "network_of", "stop_single"]


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
        self._opts: dict[int, netaddr.IPAddress | None] = {}
        self._owner: dict[int, dict[str, int]] = {}  # address -> shard
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
        self,
        network_id: int,
        ingest: Callable[[list[str]], Mapping[str, int | None]],
    ) -> bool:
        """Ingest in ONE call the journals changed since an ingest found
        nothing (``parts.quiet``; ``ingest``: bytes each, None: failed);
        poll each guard (lost events: a HUP replays); True if one died."""
        dead, shards = False, self.shards_of(network_id)
        seen = {s.spec.paths.events: parts.quiet(s.spec.paths.events)
                for s in shards}  # fmt: skip
        due = [p for p, s in zip(seen, shards, strict=True)
               if seen[p] is None or seen[p] != s.quiet]  # fmt: skip
        done = ingest(due) if due else {}
        for shard in shards:
            path = shard.spec.paths.events
            if path in done:
                shard.quiet = seen[path] if done[path] == 0 else None
            shard.guard.poll(shard.proc)
            dead |= shard.proc.pid() is None
        return dead

    # --- reconcile ------------------------------------------------------
    def stale(
        self, network_id: int, rows: Sequence[DhcpShard]
    ) -> dict[int, int | None] | None:
        """``shard_read``'s ``since``: None (all, whole) if this daemon
        has not applied the network (start, or its table failed); else
        each shard whose generation moved (its applied one: the rows
        changed since; None: whole) or with a release in flight."""
        known = {s.spec.index: s for s in self.shards_of(network_id)}
        if not known or network_id not in self._tables:
            return None
        since: dict[int, int | None] = {}
        for row in rows:
            shard = known.get(row.index)
            if shard is None:
                since[row.index] = None
            elif shard.generation != row.generation or shard.state.releases:
                since[row.index] = shard.generation
        return since

    def sync(
        self,
        network: Network,
        rows: Sequence[DhcpShard],
        entries: Sequence[HostEntry],
        leased: Sequence[Lease],
    ) -> bool:
        """:meth:`apply` with every shard read (tests, tools)."""
        return self.apply(network, rows, ShardRead.full(rows, entries, leased))

    def apply(
        self, network: Network, rows: Sequence[DhcpShard], read: ShardRead
    ) -> bool:
        """Apply ``network``'s shards, ``read`` merged into what this
        daemon applied; True once every shard serves every host (a shard
        read is applied at its generation only if it answered). Raises
        HostNetworkError subclasses."""
        sharded = shard_plan.sharded_plan(network, self.settings, rows)
        self._known[network.id] = (network, tuple(rows))
        shards = [self._shard(network, s) for s in sharded.shards]
        changed = [s for s in shards if s.spec.index in read.generations]
        owner = self._owner.setdefault(network.id, {})
        touched = parts.take(
            {s.spec.index: s for s in shards},
            read,
            owner,
            self._line,
            self._name,
        )
        running = {s.spec.index: s.proc.pid() is not None for s in shards}
        for shard in shards:
            self._link(network, shard, running[shard.spec.index])
        self._steer(sharded, shards, changed)
        self._write_opts(network, shards, bool(changed))
        hostsdir.check_access(self.settings.networks_path)
        todo = [
            s
            for s in shards
            if s.spec.index in touched
            or s.fresh
            or s.state.owed
            or not running[s.spec.index]
        ]
        served = {s.spec.index for s in todo if self._apply(network, s)}
        served -= self._feed(network, todo)
        self.dns.sync(
            sharded,
            plan.dnsmasq_spec(network, self.settings),
            {s.spec.index: s.names for s in shards},
            touched,
        )
        for shard in changed:
            leased = read.leased[shard.spec.index]
            parts.releases(network, shard, leased, self.clock(), self.tuning)
        for shard in todo:
            shard.fresh = False
            if shard.spec.index in read.generations:
                ok = shard.spec.index in served
                gen = read.generations[shard.spec.index]
                shard.generation = gen if ok else None
        return all(s.spec.index in served for s in todo)

    def _line(self, entry: HostEntry) -> str:
        single = self.settings.use_single_default_gateway
        return plan.host_line(entry, self.settings.dhcp_domain, single)

    def _name(self, entry: HostEntry) -> str:
        return plan.addn_hosts_line(entry, self.settings.dhcp_domain, True)

    def _link(self, network: Network, shard: Shard, running: bool) -> None:
        """Namespace and veth: checked once per shard and daemon, and
        again whenever its dnsmasq is not running (netlink sockets cost
        tens of ms each)."""
        if shard.linked and running:
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
        old = self._shards.get(key)
        if old is not None and old.spec == spec:
            return old
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
        if old is not None:  # e.g. its argv changed: same hosts, same set
            shard.members, shard.addresses = old.members, old.addresses
            shard.hosts, shard.wanted = old.hosts, old.wanted
            shard.names = old.names
            shard.generation = old.generation
        return shard

    def _steer(
        self,
        sharded: shard_plan.ShardedPlan,
        shards: list[Shard],
        changed: list[Shard],
    ) -> None:
        """MACs into their shard's set, before any host line is written:
        the whole table once per daemon (or when adding failed), else
        the new MACs of the shards read."""
        table = sharded.table
        if sharded.network_id not in self._tables:  # whole, once per daemon
            members = {
                s.spec.index: [e.mac for e in s.hosts.values()] for s in shards
            }
            self.nft.apply(table, shard_plan.nft_ruleset(sharded, members))
            for shard in shards:
                shard.members = set(shard.wanted)
            self._tables.add(sharded.network_id)
            return
        text = ""
        for shard in changed:
            new = [
                e.mac
                for e in shard.hosts.values()
                if plan.mac_text(e.mac) not in shard.members
            ]
            text += shard_plan.nft_add_members(table, shard.spec.index, new)
            shard.members.update(plan.mac_text(m) for m in new)
        try:
            self.nft.apply(table, text)
        except exception.FirewallApplyError:  # e.g. deleted by hand
            LOG.warning("nft %s: adding failed, replacing the table", table)
            self._tables.discard(sharded.network_id)
            self._steer(sharded, shards, changed)

    def _write_opts(
        self, network: Network, shards: list[Shard], changed: bool
    ) -> None:
        """The shared opts file; every host's with
        use_single_default_gateway (rendered only when a shard changed
        or the gateway did), else only the router."""
        single = self.settings.use_single_default_gateway
        gateway = plan.opts_gateway(network, self.settings.share_dhcp_address)
        if single and not changed and self._opts.get(network.id) == gateway:
            return
        entries = (
            [e for s in shards for e in s.hosts.values()] if single else []
        )
        entries.sort(key=lambda e: e.address)
        text = plan.opts_file(gateway, entries, single)
        if files.differs(shards[0].spec.paths.opts, text):
            for shard in shards:  # each shard must re-read it
                hostsdir.owe_reload(shard.state)
            files.replace_file(shards[0].spec.paths.opts, text)
        self._opts[network.id] = gateway

    def _apply(self, network: Network, shard: Shard) -> bool:
        """One shard's files and process (its keeper lock held)."""
        wanted, first = shard.wanted, next(iter(shard.hosts.values()), None)
        state, proc = shard.state, shard.proc
        proc.probe = None if first is None else (str(first.address), first.mac)
        with self.keeper.lock(keeper_key(network.id, shard.spec.index)):
            # watched only under the lock: the keeper never starts a
            # shard whose files this sync has not written yet
            watch = parts.watch(shard, self.settings.dhcp_lease_time)
            self.keeper.watch(keeper_key(network.id, shard.spec.index), watch)
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

    def _feed(self, network: Network, shards: list[Shard]) -> set[int]:
        """Write the queued hosts, at most ``inflight`` shards with an
        unconfirmed batch at a time; the shards that did not answer."""
        failed: set[int] = set()
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
                if not shard.proc.wait_served(
                    str(shard.spec.address), self.tuning.served_timeout
                ):
                    failed.add(shard.spec.index)
        return failed

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
        self._owner.pop(network.id, None)
        self._opts.pop(network.id, None)
        self.dns.stop(sharded, plan.dnsmasq_spec(network, self.settings))
        self.nft.apply(
            sharded.table, shard_plan.nft_delete_table(sharded.table)
        )
        self._tables.discard(network.id)
