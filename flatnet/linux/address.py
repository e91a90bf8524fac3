"""Host /32 addresses through netlink (pyroute2), nothing else.

``ensure_address``/``delete_address`` add or remove ``<address>/32`` on
a device, tolerating EEXIST/EADDRNOTAVAIL by name (nova's ``ip addr
add|del`` with exit codes 2 and 254 accepted); ``host_addresses`` reads
the /32s of a device. Which addresses a host needs (floating IPs, the
metadata address on ``lo``) is decided in :mod:`flatnet.plan.host_rules`
and handed in as data. Gratuitous ARP is :mod:`flatnet.linux.arping`,
connection tracking :mod:`flatnet.linux.conntrack`.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any, Literal

import netaddr

from flatnet import exception
from flatnet.linux import netlink

LOG = logging.getLogger(__name__)
#: RT_SCOPE_* from <linux/rtnetlink.h> ("scope global", "scope link").
SCOPES = {"global": 0, "link": 253}


class HostAddresses:
    """/32 addresses on host interfaces (in ``netns`` if given)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def __repr__(self) -> str:
        return f"HostAddresses(netns={self.netns!r})"

    def _index(self, ipr: Any, device: str) -> int:
        found = ipr.link_lookup(ifname=device)
        if not found:
            raise exception.DeviceNotFound(device=device)
        return int(found[0])

    def host_addresses(self, device: str) -> set[netaddr.IPAddress]:
        """IPv4 addresses bound as /32 on ``device``.

        Raises DeviceNotFound if the device does not exist.
        """
        with netlink.netlink_errors(device):
            ipr = netlink.open_iproute(self.netns)
            try:
                msgs = ipr.get_addr(
                    family=socket.AF_INET, index=self._index(ipr, device)
                )
            finally:
                ipr.close()
        return {
            netaddr.IPAddress(m.get_attr("IFA_LOCAL"))
            for m in msgs
            if m["prefixlen"] == 32
        }

    def _addr(
        self,
        command: str,
        device: str,
        address: netaddr.IPAddress,
        tolerated: int,
        **extra: int,
    ) -> None:
        with netlink.netlink_errors(device):
            ipr = netlink.open_iproute(self.netns)
            try:
                with netlink.tolerating(tolerated):
                    ipr.addr(
                        command,
                        index=self._index(ipr, device),
                        address=str(address),
                        prefixlen=32,
                        **extra,
                    )
            finally:
                ipr.close()

    def ensure_address(
        self,
        device: str,
        address: netaddr.IPAddress,
        scope: Literal["global", "link"] = "global",
    ) -> None:
        """``ip addr add <address>/32 [scope link] dev <device>``; already
        there (any scope) is fine. Raises DeviceNotFound or
        HostNetworkError."""
        LOG.info("Adding %s/32 (scope %s) to %s", address, scope, device)
        extra = {"scope": SCOPES[scope]} if scope != "global" else {}
        self._addr("add", device, address, errno.EEXIST, **extra)

    def delete_address(self, device: str, address: netaddr.IPAddress) -> None:
        """Remove ``address``/32 from ``device``; absent is fine."""
        LOG.info("Removing %s/32 from %s", address, device)
        self._addr("del", device, address, errno.EADDRNOTAVAIL)
