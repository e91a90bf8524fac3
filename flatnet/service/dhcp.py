"""Keep each network's dnsmasq in line with the database (component
``dhcp``).

:meth:`DhcpReconciler.sync_network` renders the full desired state
(argv, hosts/opts files) and applies only the difference:

* the running dnsmasq is restarted only if its command line or env
  prefix differs from the wanted argv (fixes nova §9.3); a pid that is
  not this network's dnsmasq is never signalled;
* with ``dhcp_hostsdir`` NEW hosts are written in batches, one file per
  batch in ``nova-<br>.d/`` (and their names in ``nova-<br>.hd/``) that
  dnsmasq reads by inotify, without a SIGHUP. A
  removed or changed host, or more than ``compact_files`` files,
  triggers a compaction: every host is written to ``nova-<br>.conf``,
  the directory emptied, and dnsmasq HUPed once (dnsmasq forgets
  hostsdir entries only on SIGHUP);
* otherwise (or for opts/addn-hosts changes) files are rewritten
  atomically and dnsmasq is HUPed only if some content changed;
* "live" means dnsmasq answered a DNS probe sent after the last write or
  HUP (see :meth:`DnsmasqProcess.wait_served`);
* before (re)starting dnsmasq it checks that ``nobody`` can traverse
  ``networks_path`` (ConfigError naming the directory otherwise) and, with
  the fast path, writes the ``init`` snapshot the sh hook prints (the
  journal ingested first, so it is exact); the snapshot is removed once
  dnsmasq answered or failed to start.

The host files and batching live in :mod:`flatnet.service.dhcp_hostsdir`.

:meth:`poll` runs every loop: it ingests lease journals, reports dead
dnsmasqs for a restart, and drives lease releases (dhcp_release, checked
against the journal, at most ``release_attempts`` tries, Neutron style).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Protocol

import netaddr

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.linux import files
from flatnet.model import HostEntry, Network
from flatnet.plan import dhcp_hook
from flatnet.plan import dnsmasq as plan
from flatnet.service import dhcp_hostsdir as hostsdir
from flatnet.service import leases

LOG = logging.getLogger(__name__)


class DnsmasqBackend(Protocol):
    """What the reconciler needs from one network's dnsmasq process."""

    def pid(self) -> int | None: ...
    def matches(self, pid: int, argv: list[str]) -> bool: ...
    def start(self, argv: list[str]) -> int: ...
    def reload(self, pid: int) -> None: ...
    def stop(self, pid: int) -> None: ...
    def wait_served(self, listen: str, timeout: float) -> bool: ...


class ReleaseBackend(Protocol):
    def release(
        self, device: str, address: netaddr.IPAddress, mac: netaddr.EUI
    ) -> bool: ...


class BridgeBackend(Protocol):
    def ensure(self, network: Network) -> None: ...


DnsmasqFactory = Callable[[str, plan.DnsmasqPaths], DnsmasqBackend]


@dataclasses.dataclass(frozen=True, slots=True)
class DhcpTuning:
    compact_files: int = 2000
    # NOTE: dnsmasq answers nothing while it handles a hostsdir file.
    # Each file costs a fixed pass over all leases x configs (inotify.c
    # -> lease_update_from_configs: ~2 ms with no leases, +0.2 s per
    # 1,000 leases at 10k hosts) plus ~0.5 ms per hosts line at 10k
    # (doc/dhcp.md). So one file per batch, each confirmed by a probe:
    # small batches (16 hosts: ~20 ms at 10k hosts), but
    # ``hostsdir_batch_max`` once a small batch takes more than
    # ``slow_batch`` to be served: the per-line part of 16 lines is
    # < 10 ms, so that is dnsmasq's fixed pass (leases x configs), and
    # then fewer events is all that helps.
    hostsdir_batch: int = 16
    hostsdir_batch_max: int = 512
    slow_batch: float = 0.2
    served_timeout: float = 5.0
    release_attempts: int = 3
    release_interval: float = 0.3


class DhcpReconciler:
    """One dnsmasq per served network, kept equal to the database."""

    component = "dhcp"

    def __init__(
        self,
        db: db_api.Database,
        host: str,
        settings: plan.DhcpSettings,
        dnsmasq: DnsmasqFactory,
        release: ReleaseBackend | None = None,
        bridge: BridgeBackend | None = None,
    ) -> None:
        self.db = db
        self.host = host
        self.settings = settings
        self.tuning = DhcpTuning()
        self.ingest_policy = leases.IngestPolicy()
        self.clock: Callable[[], float] = time.monotonic
        self.wallclock: Callable[[], float] = time.time
        self._factory = dnsmasq
        self._release = release
        self._bridge = bridge
        self._nets: dict[int, hostsdir.NetState] = {}
        self._procs: dict[int, DnsmasqBackend] = {}

    # --- helpers --------------------------------------------------------
    def serves(self, network: Network) -> bool:
        """nova: networks of this host (or multi_host / unclaimed)."""
        return network.enable_dhcp and (
            network.multi_host or network.host in (None, self.host)
        )

    def prepare(self) -> None:
        """Create networks_path (0755), remove what a killed daemon
        left there (temporary files, ``init`` snapshots) and write the
        fast-path hook (0755)."""
        files.ensure_dir(self.settings.networks_path)
        for path in hostsdir.clean_leftovers(self.settings.networks_path):
            LOG.warning("removed leftover %s (a daemon was killed)", path)
        script = dhcp_hook.hook_script(self.settings.dhcpbridge)
        path = plan.hook_script_path(self.settings.networks_path)
        files.ensure_file(path, script, mode=0o755)

    def state(self, network_id: int) -> hostsdir.NetState | None:
        return self._nets.get(network_id)

    def _net(
        self, network: Network
    ) -> tuple[hostsdir.NetState, DnsmasqBackend]:
        paths = plan.dnsmasq_paths(self.settings.networks_path, network.bridge)
        state = self._nets.get(network.id)
        if state is None or state.paths != paths:
            state = self._nets[network.id] = hostsdir.NetState(paths=paths)
            self._procs[network.id] = self._factory(network.bridge, paths)
        return state, self._procs[network.id]

    # --- reconcile ------------------------------------------------------
    def sync_network(self, network: Network) -> bool:
        """Apply ``network``'s DHCP state; True once dnsmasq serves it.

        Raises HostNetworkError/DnsmasqError on executor failures,
        ConfigError if dnsmasq (as ``nobody``) could not read our files.
        """
        if not self.serves(network):
            return True
        state, proc = self._net(network)
        if self._bridge is not None and state.network != network:
            self._bridge.ensure(network)
        state.network = network
        spec = plan.dnsmasq_spec(network, self.settings)
        argv = plan.dnsmasq_argv(spec)
        entries = db_api.host_entries(self.db, network.id)
        pid = proc.pid()
        if pid is not None and not proc.matches(pid, argv):
            LOG.info(
                "dnsmasq %s: command line changed, restarting", network.bridge
            )
            proc.stop(pid)
            pid = None
        owed = hostsdir.reload_owed(state)
        hup = self._write_files(
            network, spec, state, entries, compact=pid is None
        )
        if pid is None:
            live = self._start(network, spec, state, proc)
        else:
            if hup or owed:
                LOG.info("dnsmasq %s: HUP pid %d", network.bridge, pid)
                proc.reload(pid)
                state.reloads += 1
            live = proc.wait_served(
                str(spec.listen), self.tuning.served_timeout
            )
        if live and state.owed:
            hostsdir.reload_done(state)
        while live and state.pending:
            live = self._feed_batch(network, spec, state, proc)
        self._release_stale(network, state, entries)
        return live

    def _start(
        self,
        network: Network,
        spec: plan.DnsmasqSpec,
        state: hostsdir.NetState,
        proc: DnsmasqBackend,
    ) -> bool:
        """Start dnsmasq; True once it answers.

        With the fast path, the ``init`` snapshot (every leased address,
        from the database after ingesting the journal) is written first
        and removed once dnsmasq answered, or its start failed: the
        snapshot never outlives this start, so a dnsmasq started later
        by anything else gets the exact Python ``init``.
        Raises ConfigError (see :meth:`check_access`), DnsmasqError.
        """
        self.check_access()
        snapshot = spec.paths.init if spec.events_env else ""
        if snapshot:
            leases.ingest_journal(
                self.db, spec.paths.events, self.ingest_policy
            )
            text = leases.init_text(
                self.db,
                network.id,
                self.settings.dhcp_lease_time,
                int(self.wallclock()),
            )
            files.replace_file(snapshot, text, durable=False)
        try:
            proc.start(plan.dnsmasq_argv(spec))
            state.starts += 1
            return proc.wait_served(
                str(spec.listen), self.tuning.served_timeout
            )
        finally:
            if snapshot:
                files.delete_file(snapshot)

    def check_access(self) -> None:
        """Raise ConfigError unless ``networks_path`` and every parent
        directory up to ``/`` are traversable by others (o+x).

        dnsmasq drops to ``nobody`` before it reads its hosts files; a
        0700 parent (``mktemp -d``, a home directory) makes it silently
        serve nobody.
        """
        closed = files.closed_to_others(self.settings.networks_path)
        if closed is not None:
            raise exception.ConfigError(
                reason=(
                    f"dnsmasq runs as 'nobody' and cannot read "
                    f"{self.settings.networks_path}: directory {closed} "
                    f"is not traversable by others; fix: chmod o+x {closed}"
                )
            )

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

    def _write_files(
        self,
        network: Network,
        spec: plan.DnsmasqSpec,
        state: hostsdir.NetState,
        entries: list[HostEntry],
        compact: bool,
    ) -> bool:
        """Write opts/addn-hosts/hosts; True if dnsmasq must re-read."""
        paths = spec.paths
        files.ensure_dir(self.settings.networks_path)
        single = self.settings.use_single_default_gateway
        gateway = plan.opts_gateway(network, self.settings.share_dhcp_address)
        hup = hostsdir.ensure_file(
            state, paths.opts, plan.opts_file(gateway, entries, single)
        )
        if spec.multi_host and not spec.hostsdir:  # nova multi_host
            hup |= hostsdir.ensure_file(
                state,
                paths.addn_hosts,
                plan.addn_hosts_file(entries, spec.domain),
            )
        wanted = plan.host_lines(entries, spec.domain, single)
        if not spec.hostsdir:
            hup |= hostsdir.write_main(state, wanted)
            return hup
        state.dns = plan.dns_host_lines(entries, spec.domain)
        files.ensure_dir(paths.hostsdir)
        files.ensure_dir(paths.dns_hostsdir)
        if state.main is None:
            state.main, state.hostsdir = hostsdir.load(paths)
        limit = self.tuning.compact_files
        if compact or hostsdir.needs_compaction(state, wanted, limit):
            state.pending = []
            return hostsdir.compact(state, wanted) or hup
        hostsdir.queue_new(state, wanted)
        return hup

    # --- releases -------------------------------------------------------
    def _release_stale(
        self,
        network: Network,
        state: hostsdir.NetState,
        entries: list[HostEntry],
    ) -> None:
        """Track leases whose address is no longer allocated to that MAC
        (force_dhcp_release) and send the first release now."""
        if self._release is None:
            return
        live = {(str(e.address), plan.mac_text(e.mac)) for e in entries}
        stale = {
            (str(x.address), plan.mac_text(x.mac))
            for x in db_api.leases(self.db, network.id)
        } - live
        state.releases = {k: state.releases.get(k, (0, 0.0)) for k in stale}
        self._drive_releases(network, state)

    def _drive_releases(
        self, network: Network, state: hostsdir.NetState
    ) -> None:
        if self._release is None:
            return
        now = self.clock()
        for key, (tries, due) in list(state.releases.items()):
            if tries >= self.tuning.release_attempts or now < due:
                continue
            address, mac = key
            state.releases[key] = (
                tries + 1,
                now + self.tuning.release_interval,
            )
            LOG.info(
                "dhcp_release %s %s on %s (try %d)",
                address,
                mac,
                network.bridge,
                tries + 1,
            )
            try:
                self._release.release(
                    network.bridge,
                    netaddr.IPAddress(address),
                    netaddr.EUI(mac),
                )
            except exception.DhcpReleaseError:
                LOG.exception(
                    "network %s: release of %s failed", network.id, address
                )

    # --- every loop -----------------------------------------------------
    def poll(self) -> set[int]:
        """Ingest journals, retry releases; ids whose dnsmasq died."""
        dead: set[int] = set()
        for network_id, state in self._nets.items():
            leases.ingest_journal(
                self.db, state.paths.events, self.ingest_policy
            )
            if state.network is None:
                continue
            if state.releases and self._release is not None:
                self._check_releases(state.network, state)
            if self._procs[network_id].pid() is None:
                LOG.warning(
                    "dnsmasq %s is not running; restarting",
                    state.network.bridge,
                )
                dead.add(network_id)
        return dead

    def _check_releases(
        self, network: Network, state: hostsdir.NetState
    ) -> None:
        leased = {
            (str(x.address), plan.mac_text(x.mac))
            for x in db_api.leases(self.db, network.id)
        }
        for key in [k for k in state.releases if k not in leased]:
            LOG.info("network %s: lease of %s released", network.id, key[0])
            del state.releases[key]
        self._drive_releases(network, state)
