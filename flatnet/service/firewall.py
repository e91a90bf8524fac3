"""The compute host's instance filters, kept in line with the database
by the flatnet-network loop (component ``firewall``).

Keys: ``instance:<uuid>`` for every live instance placed on this host,
plus ``host:<name>`` for the host's filter frame (so that a change that
leaves no instance key behind, the last instance deleted, still syncs).
Every key is wanted at the one firewall generation
(:func:`flatnet.db.api.firewall_generation`), so ``wait_ready`` can wait
for one instance.

One :meth:`FirewallReconciler.sync` reads the host's whole desired state
ONCE (:class:`flatnet.db.api.HostFirewallReader`: the whole host at
start, after a failed apply and every ``full_resync_interval`` seconds,
else only what the firewall change log names since the last read), plans it
(:func:`flatnet.plan.firewall.firewall_plan`) and applies it in the
order the executors need: ipsets ensured, ONE iptables commit for every
instance, unused ipsets pruned, conntrack entries of flows whose grant
went away deleted (:func:`flatnet.plan.firewall_flows.flows_to_cut`),
then libvirt nwfilters when enabled. Fail closed per instance: an
instance whose nwfilter libvirt refused is reported not live with
libvirt's reason; the others go on. Every ``verify_interval`` the poll
reports every key dirty and the sync re-reads the live iptables, ipsets
and nwfilters, repairing drift (a flushed chain, a destroyed set).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.linux.conntrack import Entry, FlowFilter
from flatnet.linux.nwfilter import NWFilterBackend, NWFilterSync
from flatnet.plan import firewall as fw
from flatnet.plan import nwfilter as nwplan
from flatnet.plan.firewall_flows import FlowCut, flows_to_cut, not_admitted
from flatnet.plan.firewall_model import HostFirewall
from flatnet.plan.ipset import IpSetSpec
from flatnet.plan.iptables import (
    RuleSet,
    SavedTable,
    TablePlan,
    diff_ruleset,
)
from flatnet.service.daemon import Outcome, Polled

LOG = logging.getLogger(__name__)

Reader = Callable[[db_api.Database, str], tuple[int, HostFirewall]]


class Ipsets(Protocol):
    def ensure(
        self, desired: Sequence[IpSetSpec], verify: bool = ...
    ) -> object: ...
    def prune(self, desired: Sequence[IpSetSpec]) -> object: ...
    def differences(self, desired: Sequence[IpSetSpec]) -> list[str]: ...


class Iptables(Protocol):
    def read(self) -> dict[str, SavedTable]: ...
    def apply(
        self, ruleset: RuleSet, verify: bool = ...
    ) -> list[TablePlan]: ...


class FlowDeleter(Protocol):
    def delete_many(self, flows: Sequence[FlowFilter]) -> int: ...
    def list(self) -> list[Entry]: ...
    def delete_entries(self, entries: Sequence[Entry]) -> int: ...


def host_key(host: str) -> str:
    """The readiness key of the host's filter frame."""
    return f"host:{host}"


def nic_specs(state: HostFirewall) -> dict[str, list[nwplan.NicFilterSpec]]:
    """instance uuid -> the nwfilter specs of its NICs with addresses."""
    return {
        inst.uuid: [
            nwplan.NicFilterSpec(
                inst.name or f"instance-{inst.id:08x}",
                nic.mac,
                nic.addresses,
                nic.dhcp_server,
                nic.network_cidr,
            )
            for nic in inst.nics
            if nic.addresses
        ]
        for inst in state.instances
    }


def cut_filters(cuts: Sequence[FlowCut]) -> list[FlowFilter]:
    """The conntrack selections of ``cuts``: the flows to the address
    (narrowed as the cut says) and, for an address gone, the flows it
    opened itself."""
    flows = []
    for cut in cuts:
        if cut.gone:
            flows.append(FlowFilter(orig_src=cut.dst))
        port = cut.port if cut.protocol in ("tcp", "udp") else None
        flows.append(
            FlowFilter(
                orig_src=cut.src, orig_dst=cut.dst, protocol=cut.protocol,
                dport=port,
            )
        )  # fmt: skip
    return flows


def cut_flows(conntrack: FlowDeleter, cuts: Sequence[FlowCut]) -> int:
    """Delete the conntrack entries of ``cuts`` in one batch (after the
    apply); a failure is logged, not raised: the rules are already
    live."""
    if not cuts:
        return 0
    try:
        return conntrack.delete_many(cut_filters(cuts))
    except exception.HostNetworkError as exc:
        LOG.warning("conntrack: %s", exc)
        return 0


def cut_unadmitted(
    conntrack: FlowDeleter, state: HostFirewall, same_net: bool
) -> int:
    """At start (or after a failed apply), no previous state to compare
    with: cut the live flows to our instances that ``state`` does not
    admit (changes made while the service was down). Logged, not
    raised."""
    try:
        stale = not_admitted(state, conntrack.list(), same_net)
        if stale:
            LOG.info("conntrack: cutting %d flows no rule admits", len(stale))
        return conntrack.delete_entries(stale)
    except exception.HostNetworkError as exc:
        LOG.warning("conntrack: %s", exc)
        return 0


class NWFilters:
    """The libvirt side: connects on first use, again after an error.
    ``prefix`` goes before every filter name (tests; "" in service)."""

    def __init__(
        self, connect: Callable[[], NWFilterBackend], prefix: str = ""
    ) -> None:
        self.connect = connect
        self.prefix = prefix
        self.sync = NWFilterSync(prefix + nwplan.INSTANCE_PREFIX)
        self._backend: NWFilterBackend | None = None

    def apply(self, state: HostFirewall, verify: bool) -> dict[str, str]:
        """Define every NIC's filter; instance uuid -> why its filter
        could not be defined. Raises NWFilterError when libvirt cannot
        be reached or a static filter is refused (every key fails)."""
        specs = nic_specs(state)
        if self._backend is None:
            self._backend = self.connect()
            verify = True
        try:
            result = self.sync.apply(
                self._backend,
                nwplan.host_filters(
                    (s for v in specs.values() for s in v), self.prefix
                ),
                verify=verify,
            )
        except exception.NWFilterError:
            self._backend = None
            self.sync.forget()
            raise
        failed: dict[str, str] = {}
        for uuid, nics in specs.items():
            for spec in nics:
                name = nwplan.instance_filter_name(
                    spec.instance_name, spec.mac, self.prefix
                )
                if name in result.failed:
                    failed[uuid] = f"nwfilter {name}: {result.failed[name]}"
        return failed


class FirewallReconciler:
    """Reconciler (service.daemon protocol) for the instance filters."""

    component = "firewall"

    def __init__(  # noqa: PLR0913 - one executor per external system
        self,
        db: db_api.Database,
        host: str,
        settings: fw.FirewallSettings,
        *,
        ipsets: Ipsets,
        iptables: Iptables,
        conntrack: FlowDeleter,
        nwfilters: NWFilters | None = None,
        verify_interval: float = 60.0,
        reader: Reader | None = None,
        full_resync_interval: float = 600.0,
    ) -> None:
        self.db, self.host, self.settings = db, host, settings
        self.ipsets, self.iptables = ipsets, iptables
        self.conntrack = conntrack
        self.nwfilters = nwfilters
        self.verify_interval = verify_interval
        self.reader: Reader = reader or db_api.HostFirewallReader(
            full_resync_interval
        )
        self.clock: Callable[[], float] = time.monotonic
        self.last: HostFirewall | None = None
        self.commits = 0  # iptables commits made (tests, bench)
        self._next_verify = 0.0
        self._verify = False
        self._polled: tuple[int, list[str]] | None = None

    def prepare(self) -> None:
        """Nothing to do before the first poll: the first sync reads."""

    def close(self) -> None:
        """Nothing runs in the background; the rules stay in place."""

    def poll(self) -> Polled:
        generation = db_api.firewall_generation(self.db)
        if self._polled is None or self._polled[0] != generation:
            self._polled = (generation, self._host_uuids())
        wanted = {db_api.instance_key(u): generation for u in self._polled[1]}
        wanted[host_key(self.host)] = generation
        now = self.clock()
        if now < self._next_verify:
            return Polled(wanted)
        self._next_verify = now + self.verify_interval
        self._verify = True
        return Polled(wanted, frozenset(wanted))

    def _host_uuids(self) -> list[str]:
        """The uuids of the instances placed here: from the incremental
        reader's state (a delta read, which the sync then reuses), else
        one query."""
        if isinstance(self.reader, db_api.HostFirewallReader):
            _generation, state = self.reader(self.db, self.host)
            return sorted(i.uuid for i in state.instances)
        return db_api.host_instances(self.db, self.host)

    def sync(self, keys: Mapping[str, int]) -> dict[str, Outcome]:
        """Apply the whole host once; report each key."""
        generation, state = self.reader(self.db, self.host)
        verify, self._verify = self._verify, False
        try:
            failed = self.apply(state, verify)
        except exception.FlatnetError:
            self._full_read_next()
            raise
        outcomes: dict[str, Outcome] = {}
        for key in keys:
            uuid = key.removeprefix("instance:")
            if uuid in failed:
                outcomes[key] = Outcome(False, error=failed[uuid])
            else:
                outcomes[key] = Outcome(True, generation)
        return outcomes

    def _full_read_next(self) -> None:
        """After a failed apply the next sync reads the whole host."""
        reset = getattr(self.reader, "reset", None)
        if reset is not None:
            reset()

    def apply(
        self, state: HostFirewall, verify: bool = False
    ) -> dict[str, str]:
        """Make the host match ``state``; instance uuid -> why it is not
        live. Raises FlatnetError when the iptables/ipset apply fails
        (nothing is live then)."""
        plan = fw.firewall_plan(state, self.settings)
        try:
            self.ipsets.ensure(plan.ipsets, verify=verify)
            if self.iptables.apply(plan.ruleset, verify=verify):
                self.commits += 1
            self.ipsets.prune(plan.ipsets)
        except exception.FlatnetError:
            self.last = None  # unknown live state: no flow cuts from it
            raise
        same_net = self.settings.allow_same_net_traffic
        if self.last is not None:
            cut_flows(self.conntrack, flows_to_cut(self.last, state, same_net))
        else:
            cut_unadmitted(self.conntrack, state, same_net)
        self.last = state
        if self.nwfilters is None:
            return {}
        return self.nwfilters.apply(state, verify)

    def verify(self) -> list[str]:
        """What differs between the live instance chains and sets and
        the database (reads both; changes nothing)."""
        _generation, state = self.reader(self.db, self.host)
        return self._differences(fw.firewall_plan(state, self.settings))

    def _differences(self, plan: fw.FirewallPlan) -> list[str]:
        out = diff_ruleset(plan.ruleset, self.iptables.read())
        return out + self.ipsets.differences(plan.ipsets)

    def repair(self) -> list[str]:
        """Apply the database's state if anything differs (re-reading the
        live tables and sets); returns what differed."""
        _generation, state = self.reader(self.db, self.host)
        found = self._differences(fw.firewall_plan(state, self.settings))
        if found:
            self.apply(state, verify=True)
        return found
