"""Lease releases of deallocated addresses (part of component ``dhcp``).

With ``force_dhcp_release`` a lease whose address is no longer
allocated to its MAC is released with ``dhcp_release`` (nova
linux_net.release_dhcp); the release is confirmed by the ``del`` event
reaching the database through the journal, and retried at most
``attempts`` times ``interval`` seconds apart (Neutron, LP#1764481).
The tries are kept in :attr:`NetState.releases`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

import netaddr

from flatnet import exception
from flatnet.model import HostEntry, Lease, Network
from flatnet.plan import dnsmasq as plan
from flatnet.service.dhcp_hostsdir import NetState

LOG = logging.getLogger(__name__)


class ReleaseBackend(Protocol):
    def release(
        self, device: str, address: netaddr.IPAddress, mac: netaddr.EUI
    ) -> bool: ...


def _keys(items: Iterable[HostEntry | Lease]) -> set[tuple[str, str]]:
    return {(str(x.address), plan.mac_text(x.mac)) for x in items}


def track(
    state: NetState, entries: Iterable[HostEntry], leased: Iterable[Lease]
) -> None:
    """Leases whose address is not allocated to that MAC any more."""
    stale = _keys(leased) - _keys(entries)
    state.releases = {k: state.releases.get(k, (0, 0.0)) for k in stale}


def forget_released(
    network: Network, state: NetState, leased: Iterable[Lease]
) -> None:
    """Drop the tracked releases whose lease is gone (``del`` seen)."""
    still = _keys(leased)
    for key in [k for k in state.releases if k not in still]:
        LOG.info("network %s: lease of %s released", network.id, key[0])
        del state.releases[key]


def drive(
    backend: ReleaseBackend,
    network: Network,
    state: NetState,
    now: float,
    attempts: int,
    interval: float,
) -> None:
    """Send the releases that are due (at most ``attempts`` each)."""
    for key, (tries, due) in list(state.releases.items()):
        if tries >= attempts or now < due:
            continue
        address, mac = key
        state.releases[key] = (tries + 1, now + interval)
        LOG.info(
            "dhcp_release %s %s on %s (try %d)",
            address,
            mac,
            network.bridge,
            tries + 1,
        )
        try:
            backend.release(
                network.bridge, netaddr.IPAddress(address), netaddr.EUI(mac)
            )
        except exception.DhcpReleaseError:
            LOG.exception(
                "network %s: release of %s failed", network.id, address
            )
