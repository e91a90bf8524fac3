"""Reconcile the network host's iptables rules and host addresses.

``HostRules.sync(networks, floating)`` computes the full desired state
from the DB snapshot the caller hands in (plan/host_rules.py), then:
ensures the metadata IP on ``lo``, unbinds floating IPs of ours that are
no longer wanted, applies the rules (only what changed), binds the
wanted ones (NAT rules before bind, as nova) with a gratuitous ARP if
configured, and finally ``conntrack -D -r <fixed>`` for associations
that went away.

A sync trusts what this object and its backend last applied: when
nothing changed it runs no subprocess and no netlink call, and a small
change sends only the changed rules. Drift (someone flushed a chain or
removed an address) is found by ``sync(..., verify=True)`` (or
``refresh()`` then ``sync``), which re-reads iptables and the addresses;
the daemon does that every ``periodic_interval``. ``verify()`` and
``repair()`` (``flatnet-manage verify|repair``) always read.
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
from flatnet.plan.iptables import RuleSet, SavedTable, diff_ruleset

__all__ = ["HostRules", "HostRulesSettings", "SyncResult", "repair", "verify"]
LOG = logging.getLogger(__name__)
METADATA_IP = netaddr.IPNetwork(plan.METADATA_ADDRESS).ip
METADATA_DEVICE = "lo"
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
    def ensure_metadata_ip(self) -> None: ...


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
    """What one sync changed."""

    tables: tuple[str, ...] = ()
    bound: tuple[str, ...] = ()
    unbound: tuple[str, ...] = ()
    forgotten: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.tables or self.bound or self.unbound)


def floating_map(
    live: Mapping[str, SavedTable | None], prefix: str
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
        #: floating -> fixed as of the last successful sync
        self._associations: dict[str, str] | None = None
        #: our /32 binds known live (None: read them on the next sync)
        self._bound: set[tuple[str, netaddr.IPAddress]] | None = None
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
        """Rule differences plus ``+addr``/``-addr`` address differences
        (floating /32s and the metadata IP); reads everything live."""
        out = verify(self.backend, self.desired(networks, floating))
        wanted = self._wanted_binds(floating)
        bound = self._ours(floating, self._live_binds(floating, wanted))
        out += [f"+addr {a}/32 dev {d}" for d, a in sorted(wanted - bound)]
        out += [f"-addr {a}/32 dev {d}" for d, a in sorted(bound - wanted)]
        if METADATA_IP not in self.addresses.host_addresses(METADATA_DEVICE):
            out.append(f"+addr {METADATA_IP}/32 dev {METADATA_DEVICE}")
        return out

    def repair(
        self, networks: Sequence[Network], floating: Sequence[FloatingIp]
    ) -> list[str]:
        """Fix everything :meth:`verify` reports; returns that report."""
        report = self.verify(networks, floating)
        if report:
            self.sync(networks, floating, verify=True)
        return report

    def sync(
        self,
        networks: Sequence[Network],
        floating: Sequence[FloatingIp],
        verify: bool = False,
    ) -> SyncResult:
        """Reconcile rules and addresses (see module docstring);
        ``verify`` re-reads everything first (see :meth:`refresh`).

        Raises InvalidInput for bad data (before touching anything),
        FirewallApplyError, DeviceNotFound or HostNetworkError.
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
        if not self._metadata_ip:
            self.addresses.ensure_metadata_ip()
            self._metadata_ip = True
        for device, address in sorted(bound - wanted):
            self.addresses.delete_address(device, address)
        tables = tuple(p.table for p in self.backend.apply(desired))
        result = SyncResult(
            tables,
            self._bind(wanted - bound),
            tuple(f"{a} {d}" for d, a in sorted(bound - wanted)),
            self._forget(before, floating),
        )
        self._bound = wanted
        if result.changed:
            LOG.info("Host rules synced: %s", result)
        return result

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
            self.addresses.forget_connections(netaddr.IPAddress(fixed))
        self._associations = after
        return forgotten

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
