"""Host addresses of the network host: floating IPs and the metadata IP.

Binding is a /32 on the public interface through pyroute2 (netlink,
tolerating EEXIST/EADDRNOTAVAIL by name); ``ensure_metadata_ip`` puts
169.254.169.254/32 scope link on ``lo`` (nova's ``ensure_metadata_ip``,
nova-network.md §1.2 step 3, §3.6). The gratuitous ARP
(``arping``) and the conntrack flush (``conntrack -D -r <fixed>``) are
the two nova shell-outs kept as such (nova-network.md §3.8).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import socket
import subprocess
from collections.abc import Iterator, Sequence

import netaddr

from flatnet import exception
from flatnet.linux import netlink

LOG = logging.getLogger(__name__)
TIMEOUT = 30.0
#: conntrack exits 1 when no entry matched: nothing to forget.
CONNTRACK_NOTHING_DELETED = 1
#: arping exits 1 when nobody answered, which unsolicited ARP expects.
ARPING_NO_REPLY = 1
METADATA_IP = netaddr.IPAddress("169.254.169.254")
METADATA_DEVICE = "lo"
#: RT_SCOPE_LINK from <linux/rtnetlink.h> ("scope link").
SCOPE_LINK = 253


def _command(argv: Sequence[str], netns: str | None) -> list[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return [*prefix, *argv]


@contextlib.contextmanager
def _tool_errors(device: str, tolerated: int) -> Iterator[None]:
    """The one place a failed arping/conntrack becomes HostNetworkError;
    exit status ``tolerated`` is a named, accepted outcome."""
    try:
        yield
    except subprocess.CalledProcessError as exc:
        if exc.returncode == tolerated:
            return
        raise exception.HostNetworkError(
            reason=f"{exc.cmd[-1]} on {device}: "
            f"{' '.join((exc.stderr or '').split())}"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise exception.HostNetworkError(reason=f"{device}: {exc}") from exc


@functools.cache
def _arping_is_habets() -> bool:
    out = subprocess.run(
        ["arping", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    return "Habets" in out.stdout + out.stderr


def arping_argv(
    device: str, address: netaddr.IPAddress, count: int, habets: bool
) -> list[str]:
    """Gratuitous ARP argv: nova's ``arping -U -A -I dev -c N addr`` for
    iputils, ``-U -P -i dev -S addr`` for Thomas Habets' arping."""
    if habets:
        return [
            "arping",
            "-q",
            "-U",
            "-P",
            "-W",
            "0.2",
            "-c",
            str(count),
            "-i",
            device,
            "-S",
            str(address),
            str(address),
        ]
    return ["arping", "-U", "-A", "-I", device, "-c", str(count), str(address)]


class FloatingAddresses:
    """/32 addresses on host interfaces (in ``netns`` if given)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def _index(self, ipr: object, device: str) -> int:
        found = ipr.link_lookup(ifname=device)  # type: ignore[attr-defined]
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

    def ensure_metadata_ip(self) -> None:
        """``ip addr add 169.254.169.254/32 scope link dev lo``; already
        there (any scope) is fine. Raises HostNetworkError (a missing
        ``lo`` is DeviceNotFound)."""
        LOG.debug("Ensuring %s/32 on %s", METADATA_IP, METADATA_DEVICE)
        self._addr(
            "add", METADATA_DEVICE, METADATA_IP, errno.EEXIST, scope=SCOPE_LINK
        )

    def ensure_address(self, device: str, address: netaddr.IPAddress) -> None:
        """Bind ``address``/32 to ``device``; already bound is fine."""
        LOG.info("Binding floating IP %s to %s", address, device)
        self._addr("add", device, address, errno.EEXIST)

    def delete_address(self, device: str, address: netaddr.IPAddress) -> None:
        """Remove ``address``/32 from ``device``; absent is fine."""
        LOG.info("Unbinding floating IP %s from %s", address, device)
        self._addr("del", device, address, errno.EADDRNOTAVAIL)

    def announce(
        self, device: str, address: netaddr.IPAddress, count: int
    ) -> None:
        """Send ``count`` gratuitous ARPs for ``address`` on ``device``."""
        argv = arping_argv(device, address, count, _arping_is_habets())
        with _tool_errors(device, ARPING_NO_REPLY):
            subprocess.run(
                _command(argv, self.netns),
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )

    def forget_connections(self, fixed: netaddr.IPAddress) -> None:
        """``conntrack -D -r <fixed>``: drop NATed flows of an old
        association; none to drop is fine."""
        argv = ["conntrack", "-D", "-r", str(fixed)]
        with _tool_errors(str(fixed), CONNTRACK_NOTHING_DELETED):
            subprocess.run(
                _command(argv, self.netns),
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
