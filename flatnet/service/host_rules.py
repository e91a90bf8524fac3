"""Reconcile the network host's iptables rules and host addresses.

``HostRules.sync(networks, floating)`` computes the full desired state
from the DB snapshot the caller hands in (plan/host_rules.py), then:
ensures the metadata address on ``lo``, unbinds floating IPs of ours
that are no longer wanted, applies the rules (only what changed), binds
the wanted ones (NAT rules before bind, as nova) with a gratuitous ARP
if configured, and finally ``conntrack -D -r <fixed>`` for associations
that went away. Three executors, one external system each: netlink
(addresses), arping, conntrack.

A sync trusts what this object and its backend last applied: when
nothing changed it runs no subprocess and no netlink call, and a small
change sends only the changed rules. Drift (someone flushed a chain or
removed an address) is found by ``sync(..., verify=True)`` (or
``refresh()`` then ``sync``), which re-reads iptables and the addresses;
the daemon does that every ``periodic_interval``. ``verify()`` and
``repair()`` (``flatnet-manage verify|repair``) always read; ``repair``
first checks what can be checked (bad data, devices that must exist) so
that bad input changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

import netaddr

from flatnet import exception
from flatnet.linux.arping import Arping
from flatnet.linux.conntrack import Conntrack
from flatnet.linux.iptables import IptablesBackend
from flatnet.model import FloatingIp, Network
from flatnet.plan import host_rules as plan
from flatnet.plan.host_rules import HostRulesSettings
from flatnet.plan.iptables import RuleSet, SavedTable, diff_ruleset

__all__ = ["HostRules", "HostRulesSettings", "RepairResult", "SyncResult"]
LOG = logging.getLogger(__name__)
_DNAT_RE = re.compile(r"^-d (\S+)/32 -j DNAT --to-destination (\S+)$")
Bind = tuple[str, netaddr.IPAddress]


class AddressBackend(Protocol):
    """What HostRules needs from flatnet.linux.address.HostAddresses."""

    def host_addresses(self, device: str) -> set[netaddr.IPAddress]: ...
    def ensure_address(
        self,
        device: str,
        address: netaddr.IPAddress,
        scope: Literal["global", "link"] = "global",
    ) -> None: ...
    def delete_address(
        self, device: str, address: netaddr.IPAddress
    ) -> None: ...


class ArpingBackend(Protocol):
    """flatnet.linux.arping.Arping."""

    def announce(
        self, device: str, address: netaddr.IPAddress, count: int
    ) -> None: ...


class ConntrackBackend(Protocol):
    """flatnet.linux.conntrack.Conntrack."""

    def forget_connections(self, fixed: netaddr.IPAddress) -> int: ...


def verify(backend: IptablesBackend, desired: RuleSet) -> list[str]:
    """Differences between wanted and live rules (empty: in sync)."""
    return diff_ruleset(desired, backend.read())


def repair(backend: IptablesBackend, desired: RuleSet) -> list[str]:
    """Apply ``desired`` if anything differs; return what was wrong.

    Raises FirewallApplyError (the failing table is left unchanged).
    """
    diff = verify(backend, desired)
    if diff:
        backend.apply(desired, verify=True)
    return diff


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """What one sync changed; ``str()`` is a one-line summary."""

    tables: tuple[str, ...] = ()
    bound: tuple[str, ...] = ()
    unbound: tuple[str, ...] = ()
    forgotten: tuple[str, ...] = ()
    #: the metadata address, if it was missing and added
    metadata: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.tables or self.bound or self.unbound or self.metadata)

    def __str__(self) -> str:
        parts = []
        if self.tables:
            parts.append(f"iptables {', '.join(self.tables)} updated")
        if self.metadata:
            parts.append(f"added {self.metadata}")
        for label, items in (
            ("bound", self.bound),
            ("unbound", self.unbound),
            ("conntrack flushed for", self.forgotten),
        ):
            if items:
                parts.append(f"{label} {', '.join(items)}")
        return "; ".join(parts) or "nothing changed"


@dataclasses.dataclass(frozen=True)
class RepairResult:
    """What ``repair`` found (the verify report) and what it did."""

    differences: tuple[str, ...]
    applied: SyncResult | None = None

    def __str__(self) -> str:
        if not self.differences:
            return "nothing to repair"
        return f"repaired {len(self.differences)} difference(s): " + str(
            self.applied or SyncResult()
        )


def floating_map(
    live: Mapping[str, SavedTable | None], prefix: str
) -> dict[str, str]:
    """Live floating -> fixed associations, from our nat PREROUTING."""
    table = live.get("nat")
    rules = table.chains.get(f"{prefix}-PREROUTING", ()) if table else ()
    return {m.group(1): m.group(2) for m in map(_DNAT_RE.match, rules) if m}


class HostRules:
    """The network host's rules + addresses for one settings.

    ``arping``/``conntrack`` default to the real executors in the
    current network namespace (where ``addresses`` works in production).
    """

    def __init__(
        self,
        settings: HostRulesSettings,
        backend: IptablesBackend,
        addresses: AddressBackend,
        arping: ArpingBackend | None = None,
        conntrack: ConntrackBackend | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.addresses = addresses
        self.arping = arping if arping is not None else Arping()
        self.conntrack = conntrack if conntrack is not None else Conntrack()
        #: floating -> fixed as of the last successful sync
        self._associations: dict[str, str] | None = None
        #: our /32 binds known live (None: read them on the next sync)
        self._bound: set[Bind] | None = None
        self._metadata_ip = False

    def refresh(self) -> None:
        """Forget what is known to be live: the next sync re-reads the
        iptables tables and the addresses and so repairs any drift."""
        self.backend.refresh()
        self._bound = None
        self._metadata_ip = False

    def desired(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> RuleSet:
        """The full RuleSet; raises InvalidInput on bad data."""
        return plan.host_ruleset(networks, floating, self.settings)

    def _wanted_binds(self, floating: Sequence[FloatingIp]) -> set[Bind]:
        wanted = set()
        for fip in plan.associated(floating):
            device = plan.floating_device(fip, self.settings)
            if device is None:
                LOG.warning(
                    "Floating IP %s has no interface; not bound", fip.address
                )
                continue
            wanted.add((device, plan.ipv4(fip.address)))
        return wanted

    def _live_binds(
        self, floating: Sequence[FloatingIp], wanted: set[Bind]
    ) -> set[Bind]:
        """Every /32 on the interfaces floating IPs use (one netlink dump
        per device); a missing device has none."""
        devices = {
            d
            for d in (
                self.settings.public_interface,
                *(f.interface for f in floating),
                *(d for d, _ in wanted),
            )
            if d
        }
        live = set()
        for device in sorted(devices):
            try:
                found = self.addresses.host_addresses(device)
            except exception.DeviceNotFound:
                continue
            live |= {(device, a) for a in found}
        return live

    def _ours(
        self, floating: Sequence[FloatingIp], live: set[Bind]
    ) -> set[Bind]:
        """The live /32s that are ours: a known floating IP or one in a
        configured floating range. Other addresses are never touched."""
        known = {plan.ipv4(f.address) for f in floating}
        ranges = self.settings.floating_ranges
        return {
            (d, a)
            for d, a in live
            if a in known or any(a in r for r in ranges)
        }

    def _missing_device(self, device: str, addresses: list[str]) -> str:
        """One line naming where ``device`` comes from (the option or the
        floating IPs' own interface) and what needs it."""
        which = ", ".join(addresses)
        if device == self.settings.public_interface:
            return (
                f"public_interface = {device}: no such device on this "
                f"host (floating IP {which} would be bound to it)"
            )
        return (
            f"floating IP {which}: its interface {device} does not "
            "exist on this host (set public_interface, or re-create the "
            "floating IP with --interface)"
        )

    def problems(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> list[str]:
        """What would make a sync fail half-way, found without changing
        anything: bad data (InvalidInput is raised) and devices that
        must exist but do not (one line each)."""
        self.desired(networks, floating)
        needs: dict[str, list[str]] = {}
        for device, address in sorted(self._wanted_binds(floating)):
            needs.setdefault(device, []).append(str(address))
        meta = plan.metadata_bind()
        needs.setdefault(meta.device, [])
        out = []
        for device, addresses in needs.items():
            try:
                self.addresses.host_addresses(device)
            except exception.DeviceNotFound:
                out.append(self._missing_device(device, addresses))
        return out

    def verify(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> list[str]:
        """Rule differences plus ``+addr``/``-addr`` address differences
        (floating /32s and the metadata address) and ``!`` problems
        (missing devices); reads everything live."""
        problems = [f"! {p}" for p in self.problems(networks, floating)]
        out = verify(self.backend, self.desired(networks, floating))
        wanted = self._wanted_binds(floating)
        bound = self._ours(floating, self._live_binds(floating, wanted))
        out += [f"+addr {a}/32 dev {d}" for d, a in sorted(wanted - bound)]
        out += [f"-addr {a}/32 dev {d}" for d, a in sorted(bound - wanted)]
        meta = plan.metadata_bind()
        # a missing lo is already one of the problems
        with contextlib.suppress(exception.DeviceNotFound):
            if meta.address not in self.addresses.host_addresses(meta.device):
                out.append(f"+addr {meta}")
        return out + problems

    def repair(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> RepairResult:
        """Fix everything :meth:`verify` reports and say what was done.

        Checks first (:meth:`problems`): bad data raises InvalidInput, a
        missing device ConfigError naming it, and nothing is changed.
        """
        problems = self.problems(networks, floating)
        if problems:
            raise exception.ConfigError(
                reason=f"{problems[0]}; nothing was changed"
            )
        report = tuple(self.verify(networks, floating))
        if not report:
            return RepairResult(report)
        return RepairResult(report, self.sync(networks, floating, verify=True))

    def sync(
        self,
        networks: Sequence[Network],
        floating: Sequence[FloatingIp],
        verify: bool = False,
    ) -> SyncResult:
        """Reconcile rules and addresses (see module docstring);
        ``verify`` re-reads everything first (see :meth:`refresh`).

        Raises InvalidInput for bad data (before touching anything),
        FirewallApplyError, ConfigError (a floating IP's device is
        missing: the rules are applied, that bind is not) or
        HostNetworkError.
        """
        if verify:
            self.refresh()
        desired = self.desired(networks, floating)
        wanted = self._wanted_binds(floating)
        bound, self._bound = self._bound, None  # unknown until done
        if bound is None:
            bound = self._ours(floating, self._live_binds(floating, wanted))
        before = self._associations
        if before is None:
            nat = self.backend.read_table("nat")
            before = floating_map({"nat": nat}, desired.prefix)
        metadata = self._ensure_metadata()
        for device, address in sorted(bound - wanted):
            self.addresses.delete_address(device, address)
        tables = tuple(p.table for p in self.backend.apply(desired))
        result = SyncResult(
            tables,
            self._bind(wanted - bound),
            tuple(f"{a} {d}" for d, a in sorted(bound - wanted)),
            self._forget(before, floating),
            metadata,
        )
        self._bound = wanted
        if result.changed:
            LOG.info("Host rules synced: %s", result)
        return result

    def _ensure_metadata(self) -> str | None:
        """Add the metadata address unless known live; returns it if it
        was missing (one netlink read, on the first or a verifying
        sync only)."""
        if self._metadata_ip:
            return None
        meta = plan.metadata_bind()
        added = None
        if meta.address not in self.addresses.host_addresses(meta.device):
            self.addresses.ensure_address(
                meta.device, meta.address, meta.scope
            )
            added = str(meta)
        self._metadata_ip = True
        return added

    def _forget(
        self, before: Mapping[str, str], floating: Sequence[FloatingIp]
    ) -> tuple[str, ...]:
        """``conntrack -D -r`` each fixed IP whose association went away;
        remembers the new associations once all succeeded."""
        after = {
            str(f.address): str(f.fixed_address)
            for f in plan.associated(floating)
        }
        forgotten = tuple(
            sorted(
                {fix for flt, fix in before.items() if after.get(flt) != fix}
            )
        )
        for fixed in forgotten:
            self.conntrack.forget_connections(netaddr.IPAddress(fixed))
        self._associations = after
        return forgotten

    def _bind(self, missing: set[Bind]) -> tuple[str, ...]:
        """Bind (and announce) the wanted /32s that are not live yet."""
        done = []
        for device, address in sorted(missing):
            try:
                self.addresses.ensure_address(device, address)
            except exception.DeviceNotFound as exc:
                reason = self._missing_device(device, [str(address)])
                raise exception.ConfigError(reason=reason) from exc
            if self.settings.send_arp_for_ha:
                self.arping.announce(
                    device, address, self.settings.send_arp_for_ha_count
                )
            done.append(f"{address} {device}")
        return tuple(done)
