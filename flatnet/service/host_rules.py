"""Reconcile the network host's iptables rules and floating IP binds.

``HostRules.sync(networks, floating)`` computes the full desired state
from the DB snapshot the caller hands in (plan/host_rules.py), then:
unbinds floating IPs of ours that are no longer wanted, applies the rules
(each table only if our part differs), binds the wanted ones (NAT rules
before bind, as nova) with a gratuitous ARP if configured, and finally
``conntrack -D -r <fixed>`` for associations that went away. It is cheap
when nothing changed (one iptables-save, one netlink dump per device), so
the daemon may call it periodically; that also repairs rules someone
flushed. ``verify()``/``repair()`` back ``flatnet-manage verify|repair``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

import netaddr

from flatnet import exception
from flatnet.linux.iptables import IptablesBackend
from flatnet.model import FloatingIp, Network
from flatnet.plan import host_rules as plan
from flatnet.plan.host_rules import HostRulesSettings
from flatnet.plan.iptables import (
    RuleSet,
    SavedTable,
    diff_ruleset,
    plan_ruleset,
)

__all__ = ["HostRules", "HostRulesSettings", "SyncResult", "repair", "verify"]
LOG = logging.getLogger(__name__)
_DNAT_RE = re.compile(r"^-d (\S+)/32 -j DNAT --to-destination (\S+)$")


class AddressBackend(Protocol):
    """What reconcile needs from flatnet.linux.address.FloatingAddresses."""

    def host_addresses(self, device: str) -> set[netaddr.IPAddress]: ...
    def ensure_address(
        self, device: str, address: netaddr.IPAddress
    ) -> None: ...
    def delete_address(
        self, device: str, address: netaddr.IPAddress
    ) -> None: ...
    def announce(
        self, device: str, address: netaddr.IPAddress, count: int
    ) -> None: ...
    def forget_connections(self, fixed: netaddr.IPAddress) -> None: ...


def verify(backend: IptablesBackend, desired: RuleSet) -> list[str]:
    """Differences between wanted and live rules (empty: in sync)."""
    return diff_ruleset(desired, backend.read())


def repair(backend: IptablesBackend, desired: RuleSet) -> list[str]:
    """Apply ``desired`` if anything differs; return what was wrong.

    Raises FirewallApplyError (the failing table is left unchanged).
    """
    diff = verify(backend, desired)
    if diff:
        backend.apply(desired)
    return diff


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """What one sync changed."""

    tables: tuple[str, ...] = ()
    bound: tuple[str, ...] = ()
    unbound: tuple[str, ...] = ()
    forgotten: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.tables or self.bound or self.unbound)


def floating_map(
    live: Mapping[str, SavedTable], prefix: str
) -> dict[str, str]:
    """Live floating -> fixed associations, from our nat PREROUTING."""
    table = live.get("nat")
    rules = table.chains.get(f"{prefix}-PREROUTING", ()) if table else ()
    return {m.group(1): m.group(2) for m in map(_DNAT_RE.match, rules) if m}


class HostRules:
    """The network host's rules + floating binds for one settings."""

    def __init__(
        self,
        settings: HostRulesSettings,
        backend: IptablesBackend,
        addresses: AddressBackend,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.addresses = addresses

    def desired(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> RuleSet:
        """The full RuleSet; raises InvalidInput on bad data."""
        return plan.host_ruleset(networks, floating, self.settings)

    def _wanted_binds(
        self, floating: Sequence[FloatingIp]
    ) -> set[tuple[str, netaddr.IPAddress]]:
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
        self,
        floating: Sequence[FloatingIp],
        wanted: set[tuple[str, netaddr.IPAddress]],
    ) -> set[tuple[str, netaddr.IPAddress]]:
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
        self,
        floating: Sequence[FloatingIp],
        live: set[tuple[str, netaddr.IPAddress]],
    ) -> set[tuple[str, netaddr.IPAddress]]:
        """The live /32s that are ours: a known floating IP or one in a
        configured floating range. Other addresses are never touched."""
        known = {plan.ipv4(f.address) for f in floating}
        ranges = self.settings.floating_ranges
        return {
            (d, a)
            for d, a in live
            if a in known or any(a in r for r in ranges)
        }

    def verify(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> list[str]:
        """Rule differences plus ``+addr``/``-addr`` bind differences."""
        out = verify(self.backend, self.desired(networks, floating))
        wanted = self._wanted_binds(floating)
        bound = self._ours(floating, self._live_binds(floating, wanted))
        out += [f"+addr {a}/32 dev {d}" for d, a in sorted(wanted - bound)]
        out += [f"-addr {a}/32 dev {d}" for d, a in sorted(bound - wanted)]
        return out

    def repair(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> list[str]:
        """Fix everything :meth:`verify` reports; returns that report."""
        report = self.verify(networks, floating)
        if report:
            self.sync(networks, floating)
        return report

    def sync(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> SyncResult:
        """Reconcile rules and binds (see module docstring).

        Raises InvalidInput for bad data (before touching anything),
        FirewallApplyError, DeviceNotFound or HostNetworkError.
        """
        desired = self.desired(networks, floating)
        wanted = self._wanted_binds(floating)
        live_binds = self._live_binds(floating, wanted)
        stale = self._ours(floating, live_binds) - wanted
        live = self.backend.read()
        before = floating_map(live, desired.prefix)
        for device, address in sorted(stale):
            self.addresses.delete_address(device, address)
        tables: tuple[str, ...] = ()
        if any(not p.empty for p in plan_ruleset(desired, live)):
            tables = tuple(p.table for p in self.backend.apply(desired))
        bound = self._bind(wanted - live_binds)
        after = {
            str(f.address): str(f.fixed_address)
            for f in plan.associated(floating)
        }
        forgotten = tuple(
            sorted(
                {
                    fixed
                    for flt, fixed in before.items()
                    if after.get(flt) != fixed
                }
            )
        )
        for fixed in forgotten:
            self.addresses.forget_connections(netaddr.IPAddress(fixed))
        result = SyncResult(
            tables,
            bound,
            tuple(f"{a} {d}" for d, a in sorted(stale)),
            forgotten,
        )
        if result.changed:
            LOG.info("Host rules synced: %s", result)
        return result

    def _bind(
        self, missing: set[tuple[str, netaddr.IPAddress]]
    ) -> tuple[str, ...]:
        """Bind (and announce) the wanted /32s that are not live yet."""
        done = []
        for device, address in sorted(missing):
            self.addresses.ensure_address(device, address)
            if self.settings.send_arp_for_ha:
                self.addresses.announce(
                    device, address, self.settings.send_arp_for_ha_count
                )
            done.append(f"{address} {device}")
        return tuple(done)
