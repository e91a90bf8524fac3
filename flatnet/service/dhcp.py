"""Keep each network's dnsmasq in line with the database (``dhcp``).

:meth:`DhcpReconciler.sync_network` renders the full desired state
(argv, hosts/opts files) and applies only the difference:

* dnsmasq is restarted only if its argv or env prefix differs (nova
  linux_net.restart_dhcp: on every change); never a pid not its own;
* with ``dhcp_hostsdir`` NEW hosts are written in batches, one file per
  batch in ``nova-<br>.d/`` (names in ``nova-<br>.hd/``) that dnsmasq
  reads by inotify, without a SIGHUP. A removed or changed host, or more
  than ``compact_files`` files, triggers a compaction: every host is
  written to ``nova-<br>.conf``, the directory emptied, and dnsmasq
  HUPed once (dnsmasq forgets hostsdir entries only on SIGHUP);
* otherwise (or for opts/addn-hosts changes) files are rewritten
  atomically, dnsmasq HUPed only if some content changed;
* "live": dnsmasq answered a probe sent after the last write or HUP;
* a change that needs a SIGHUP first leaves a "pending reload" marker,
  removed once dnsmasq answered after the HUP: a daemon killed in
  between makes the next one HUP (never trust the files alone);
* before (re)starting dnsmasq it checks that ``nobody`` can traverse
  ``networks_path`` (else ConfigError) and, with the fast path, writes
  the exact ``init`` snapshot the sh hook prints (journal ingested
  first), removed once dnsmasq answered or failed to start.

The database is read before the network's lock is taken; files and the
process change only under it (shared with the keeper thread,
:mod:`flatnet.service.dhcp_keeper`, which restarts a dead dnsmasq from
disk). Host files: ``dhcp_hostsdir``; releases: ``dhcp_releases``;
shards: ``dhcp_shards``. :meth:`poll` ingests journals, reports dead
dnsmasqs, drives releases."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.linux import files
from flatnet.model import DhcpShard, HostEntry, Lease, Network
from flatnet.plan import dhcp_hook
from flatnet.plan import dhcp_shards as shard_plan
from flatnet.plan import dnsmasq as plan
from flatnet.service import dhcp_hostsdir as hostsdir
from flatnet.service import dhcp_releases as releases
from flatnet.service import dhcp_shard_sweep as sweep
from flatnet.service import dhcp_shards as shard_service
from flatnet.service import lease_guard, leases
from flatnet.service.daemon import Outcome, Polled
from flatnet.service.dhcp_keeper import (
    DhcpTuning,
    DnsmasqBackend,
    DnsmasqKeeper,
    Watch,
    snapshot_path,
)
from flatnet.service.dhcp_releases import ReleaseBackend
from flatnet.service.lease_expiry import LeaseExpiry
from flatnet.service.troubles import Troubles

LOG = logging.getLogger(__name__)


class BridgeBackend(Protocol):
    def ensure(self, network: Network) -> None: ...


DnsmasqFactory = Callable[[str, plan.DnsmasqPaths], DnsmasqBackend]


class DhcpReconciler:
    """One dnsmasq per served network, kept equal to the database."""

    component = "dhcp"

    def __init__(
        self,
        db: db_api.Database,
        host: str,
        settings: plan.DhcpSettings,
        dnsmasq: DnsmasqFactory,
        *,
        release: ReleaseBackend | None = None,
        bridge: BridgeBackend | None = None,
    ) -> None:
        self.db = db
        self.host = host
        self.settings = settings
        self.tuning = DhcpTuning()
        self.keeper = DnsmasqKeeper()
        self.ingest_policy = leases.IngestPolicy()
        self.clock: Callable[[], float] = time.monotonic
        self._factory = dnsmasq
        self._release = release
        self._bridge = bridge
        self._nets: dict[int, hostsdir.NetState] = {}
        self._procs: dict[int, DnsmasqBackend] = {}
        self._guards: dict[int, lease_guard.JournalGuard] = {}
        self._lease_refresh: dict[int, float] = {}
        self._ingested = 0  # bytes ingested by the current poll (busy)
        self.troubles = Troubles()
        self.expiry = LeaseExpiry(db, self.troubles, settings, host)
        sharded = shard_service.ShardedDhcp
        self.sharded = sharded(settings, self.tuning, self.keeper)
        self._sharded_ids: set[int] = set()
        self._swept = False

    def serves(self, network: Network) -> bool:
        """nova: networks of this host (or multi_host / unclaimed)."""
        return network.enable_dhcp and (
            network.multi_host or network.host in (None, self.host)
        )

    def prepare(self) -> None:
        """Create networks_path (0755), remove what a killed daemon left
        (temp files, ``init`` snapshots), write both hooks (sh, Lua)."""
        files.ensure_dir(self.settings.networks_path)
        for path in hostsdir.clean_leftovers(self.settings.networks_path):
            LOG.warning("removed leftover %s (a daemon was killed)", path)
        script = dhcp_hook.hook_script(self.settings.dhcpbridge)
        path = plan.hook_script_path(self.settings.networks_path)
        files.ensure_file(path, script, mode=0o755)
        lua = plan.hook_script_path(self.settings.networks_path, "lua")
        files.ensure_file(lua, dhcp_hook.lua_script(), mode=0o644)
        self.keeper.interval = self.tuning.keeper_interval
        self.keeper.served_timeout = self.tuning.served_timeout
        self.keeper.begin()

    def close(self) -> None:
        self.keeper.close()  # dnsmasq keeps running

    def state(self, network_id: int) -> hostsdir.NetState | None:
        return self._nets.get(network_id)  # tests

    def _net(
        self, network: Network
    ) -> tuple[hostsdir.NetState, DnsmasqBackend]:
        paths = plan.dnsmasq_paths(self.settings.networks_path, network.bridge)
        state = self._nets.get(network.id)
        if state is None or state.paths != paths:
            state = self._nets[network.id] = hostsdir.NetState(paths=paths)
            self._procs[network.id] = self._factory(network.bridge, paths)
            self._guards[network.id] = lease_guard.JournalGuard(
                paths.events, network.bridge
            )
        return state, self._procs[network.id]

    def sync_network(self, network: Network) -> bool:
        """Apply ``network``'s DHCP state; True once dnsmasq serves it.
        The database is read without the network's lock, files and
        process change under it (shared with the keeper thread). Raises
        HostNetworkError/DnsmasqError, ConfigError if dnsmasq (as
        ``nobody``) could not read our files. Not served: torn down."""
        if not self.serves(network):
            self.keeper.unwatch(network.id)
            self.expiry.forget(network.id)
            return self.sharded.drop(network.id)
        state, proc = self._net(network)
        if self._bridge is not None and hostsdir.changed(state, network):
            self._bridge.ensure(network)
        state.network = network
        limits = self.settings.dhcp_shard_hosts, self.settings.dhcp_max_shards
        shards = db_api.ensure_shards(self.db, network.id, *limits)
        if shards:
            return self._sync_sharded(network, shards, proc)
        spec = plan.dnsmasq_spec(network, self.settings)
        argv = plan.dnsmasq_argv(spec)
        self._guards[network.id].prepare()  # 0600 before a hook makes it
        self.expiry.track(network.id, spec)
        entries = db_api.host_entries(self.db, network.id)
        pid = proc.pid()
        if pid is None or not proc.matches(pid, argv):
            # a start follows: its init snapshot must be exact
            leases.ingest_journal(
                self.db, spec.paths.events, self.ingest_policy, self.host
            )
        leased = db_api.leases(self.db, network.id)
        self.check_access()  # the keeper must not start what cannot serve
        watch = self._watch(network, spec, proc, leased)
        with self.keeper.lock(network.id):
            live = self._apply(network, spec, state, entries, watch)
            while live and state.pending:
                live = self._feed_batch(network, spec, state, proc)
        if self._release is not None:
            releases.track(state, entries, leased)
            self._drive_releases(network, state)
        return live

    def _sync_sharded(
        self,
        network: Network,
        shards: list[DhcpShard],
        proc: DnsmasqBackend,
    ) -> bool:
        """A network with shards: first its single dnsmasq (if any: it
        grew) stopped and every journal ingested (then by :meth:`poll`),
        watched for lease expiry; only what changed read and applied."""
        self.sharded.tuning = self.tuning
        np, bridge = self.settings.networks_path, network.bridge
        paths = [self._nets[network.id].paths.events]
        paths += shard_plan.shard_journals(np, bridge, shards)
        if network.id not in self._sharded_ids:  # once per daemon
            limit = self.settings.dhcp_shard_hosts
            shard_service.stop_single(self.keeper, network, proc, limit)
            self._sharded_ids.add(network.id)
            self._ingest_all(paths)
        self.expiry.track_journals(network.id, paths)
        since = self.sharded.stale(network.id, shards)
        read = db_api.shard_read(self.db, network.id, since)
        LOG.debug("network %s: read %s", network.id, since)  # None: all
        return self.sharded.apply(network, shards, read)

    def _watch(
        self,
        network: Network,
        spec: plan.DnsmasqSpec,
        proc: DnsmasqBackend,
        leased: list[Lease],
    ) -> Watch:
        """Tell the keeper what to restart, before any write can fail."""
        watch = Watch(
            bridge=network.bridge,
            argv=plan.dnsmasq_argv(spec),
            listen=str(spec.listen),
            snapshot=snapshot_path(spec),
            marker=hostsdir.marker_path(spec.paths),
            proc=proc,
            lease_time=self.settings.dhcp_lease_time,
            leases=leased,
            helper=spec.lua_hook,
        )
        self.keeper.watch(network.id, watch)
        return watch

    def _apply(
        self,
        network: Network,
        spec: plan.DnsmasqSpec,
        state: hostsdir.NetState,
        entries: list[HostEntry],
        watch: Watch,
    ) -> bool:
        """Files, then start/HUP (network lock held); True if served."""
        proc = watch.proc
        pid = proc.pid()
        if pid is not None and not proc.matches(pid, watch.argv):
            LOG.info(
                "dnsmasq %s: command line changed, restarting", network.bridge
            )
            proc.stop(pid)
            pid = None
        owed = hostsdir.reload_owed(state)
        hup = hostsdir.write_files(
            self.settings,
            -1 if pid is None else self.tuning.compact_files,
            network,
            spec,
            state,
            entries,
        )
        if pid is None:
            live = self.keeper.start_locked(watch)
            state.starts += 1
        else:
            if hup or owed:
                LOG.info("dnsmasq %s: HUP pid %d", network.bridge, pid)
                proc.reload(pid)
                state.reloads += 1
            live = proc.wait_served(watch.listen, self.tuning.served_timeout)
        if live and state.owed:
            hostsdir.reload_done(state)
        return live

    def check_access(self) -> None:
        """ConfigError unless dnsmasq (as ``nobody``) can reach our
        files (see :func:`dhcp_hostsdir.check_access`)."""
        hostsdir.check_access(self.settings.networks_path)

    def _feed_batch(
        self,
        network: Network,
        spec: plan.DnsmasqSpec,
        state: hostsdir.NetState,
        proc: DnsmasqBackend,
    ) -> bool:
        """Write one hostsdir batch and wait until dnsmasq serves again;
        a small batch slower than ``slow_batch`` selects big batches."""
        started = time.monotonic()
        size = self.tuning.hostsdir_batch
        if state.slow:
            size = self.tuning.hostsdir_batch_max
        size = hostsdir.write_batch(state, size)
        live = proc.wait_served(str(spec.listen), self.tuning.served_timeout)
        took = time.monotonic() - started
        LOG.debug(
            "dnsmasq %s: %d hosts served in %.3f s", network.bridge, size, took
        )
        if not state.slow or took < self.tuning.slow_batch:
            state.slow = took > self.tuning.slow_batch
        return live

    def _drive_releases(
        self, network: Network, state: hostsdir.NetState
    ) -> None:
        if self._release is not None:
            releases.drive(
                self._release,
                network,
                state,
                self.clock(),
                self.tuning.release_attempts,
                self.tuning.release_interval,
            )

    # --- the daemon's interface (service.daemon.Reconciler) -------------
    def poll(self) -> Polled:
        """Ingest journals, retry releases; every network's key
        (``network:<id>``) with its generation, dirty if its dnsmasq
        died or the keeper restarted it; busy if a journal had events. A
        journal that cannot be read is logged (once) and does not stop
        the others. The first call removes shards left by networks this
        host no longer serves."""
        if not self._swept:
            self._swept = sweep.sweep(self.db, self.sharded, self.serves)
        dirty = {
            shard_service.network_of(k) or k for k in self.keeper.restarted()
        }
        self._ingested = 0
        for network_id, state in self._nets.items():
            if network_id in self._sharded_ids:
                if self.sharded.poll(network_id, self._ingest_all):
                    dirty.add(network_id)
                self.expiry.poll(network_id, self.clock(), self.tuning)
                continue
            if self._ingest(state.paths.events) and state.network is not None:
                self._refresh_leases(network_id)
            if state.network is None:
                continue
            self._guards[network_id].poll(self._procs[network_id])
            self.expiry.poll(network_id, self.clock(), self.tuning)
            if state.releases and self._release is not None:
                self._check_releases(state.network, state)
            if self._procs[network_id].pid() is None:
                dirty.add(network_id)
        wanted = db_api.network_generations(self.db)
        for gone in set(self._nets) - set(wanted):
            self.keeper.unwatch(gone)
            self.expiry.forget(gone)
            self.sharded.drop(gone)
        return Polled(
            {db_api.network_key(n): g for n, g in wanted.items()},
            frozenset(db_api.network_key(n) for n in dirty if n in wanted),
            busy=self._ingested > 0,
        )

    def _ingest(self, path: str) -> int | None:  # bytes; None: failed
        return self._ingest_all([path])[path]

    def _ingest_all(self, paths: list[str]) -> dict[str, int | None]:
        """``paths`` in one transaction; bytes per journal (None: failed)."""
        args = (self.db, paths, self.ingest_policy, self.host)
        done = leases.ingest_reported(*args, self.troubles)
        self._ingested += sum(n or 0 for n in done.values())
        return done

    def sync(self, keys: Mapping[str, int]) -> dict[str, Outcome]:
        """Sync each ``network:<id>`` in ``keys`` from one snapshot of
        the networks; one network's failure is its own outcome."""
        networks = {n.id: n for n in db_api.network_list(self.db)}
        outcomes: dict[str, Outcome] = {}
        for key in keys:
            network = networks.get(int(key.removeprefix("network:")))
            if network is None:  # deleted since the poll
                continue
            try:
                live = self.sync_network(network)
            except exception.FlatnetError as exc:
                outcomes[key] = Outcome(False, error=exc)
                continue
            error = None if live else "dnsmasq did not answer after the change"
            outcomes[key] = Outcome(live, network.generation, error)
        return outcomes

    def _refresh_leases(self, network_id: int) -> None:
        """The keeper's leases (``init``), every ``lease_refresh`` s."""
        now = self.clock()
        if now < self._lease_refresh.get(network_id, 0.0):
            return
        self._lease_refresh[network_id] = now + self.tuning.lease_refresh
        self.keeper.set_leases(network_id, db_api.leases(self.db, network_id))

    def _check_releases(
        self, network: Network, state: hostsdir.NetState
    ) -> None:
        leased = db_api.leases(self.db, network.id)
        releases.forget_released(network, state, leased)
        self._drive_releases(network, state)
