"""EXECUTOR: ask dnsmasq to drop one lease (``dhcp_release``).

``dhcp_release <dev> <ip> <mac>`` sends a forged DHCPRELEASE from the
client to dnsmasq over ``dev``; dnsmasq then runs its script with
``del <mac> <ip>``. It must run in the network namespace of the bridge
(``netns``), and like nova it is a no-op when the device is gone.
"""

from __future__ import annotations

import logging
import os
import subprocess

import netaddr

from flatnet import exception

LOG = logging.getLogger(__name__)


class DhcpRelease:
    """Runs dhcp_release, optionally inside ``netns``."""

    def __init__(
        self, netns: str | None = None, binary: str = "dhcp_release"
    ) -> None:
        self.netns = netns
        self.binary = binary

    def _device_exists(self, device: str) -> bool:
        if self.netns is None:
            return os.path.exists(f"/sys/class/net/{device}")
        done = subprocess.run(
            ["ip", "-netns", self.netns, "link", "show", "dev", device],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def release(
        self, device: str, address: netaddr.IPAddress, mac: netaddr.EUI
    ) -> bool:
        """Send the release; False (nothing sent) if ``device`` is gone.

        Raises DhcpReleaseError if dhcp_release fails.
        """
        if not self._device_exists(device):
            LOG.info("dhcp_release %s: device %s is gone", address, device)
            return False
        mac_text = str(netaddr.EUI(mac, dialect=netaddr.mac_unix_expanded))
        argv = [self.binary, device, str(address), mac_text]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise exception.DhcpReleaseError(
                address=address, bridge=device, reason=str(exc)
            ) from exc
        if done.returncode != 0:
            raise exception.DhcpReleaseError(
                address=address,
                bridge=device,
                reason=done.stderr.strip() or f"exit {done.returncode}",
            )
        return True
