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
    """Runs dhcp_release, optionally inside ``netns``.

    Every failure to run a program (missing binary, timeout, non-zero
    exit) is translated here, once, into DhcpReleaseError.
    """

    def __init__(
        self, netns: str | None = None, binary: str = "dhcp_release"
    ) -> None:
        self.netns = netns
        self.binary = binary

    def _run(
        self, argv: list[str], address: netaddr.IPAddress, device: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (10 s at most). Raises DhcpReleaseError if it
        cannot be run or times out."""
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, check=False, timeout=10
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise exception.DhcpReleaseError(
                address=address, bridge=device, reason=f"{argv[0]}: {exc}"
            ) from exc

    def _device_exists(self, device: str, address: netaddr.IPAddress) -> bool:
        if self.netns is None:
            return os.path.exists(f"/sys/class/net/{device}")
        argv = ["ip", "-netns", self.netns, "link", "show", "dev", device]
        return self._run(argv, address, device).returncode == 0

    def release(
        self, device: str, address: netaddr.IPAddress, mac: netaddr.EUI
    ) -> bool:
        """Send the release; False (nothing sent) if ``device`` is gone.

        Raises DhcpReleaseError if dhcp_release cannot be run or fails.
        """
        if not self._device_exists(device, address):
            LOG.info("dhcp_release %s: device %s is gone", address, device)
            return False
        mac_text = str(netaddr.EUI(mac, dialect=netaddr.mac_unix_expanded))
        argv = [self.binary, device, str(address), mac_text]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        done = self._run(argv, address, device)
        if done.returncode != 0:
            raise exception.DhcpReleaseError(
                address=address,
                bridge=device,
                reason=done.stderr.strip() or f"exit {done.returncode}",
            )
        return True
