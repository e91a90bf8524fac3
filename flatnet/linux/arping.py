"""Gratuitous ARP with ``arping`` (one external tool, one error seam).

nova's ``bind_floating_ip`` sends ``arping -U <addr> -A -I <dev> -c N``
(iputils) when ``send_arp_for_ha`` is set; Debian's default ``arping``
is Thomas Habets' tool, whose flags differ, so the argv is chosen by
asking ``arping --help`` once.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Iterator, Sequence

import netaddr

from flatnet import exception

TIMEOUT = 30.0
#: arping exits 1 when nobody answered, which unsolicited ARP expects.
ARPING_NO_REPLY = 1


def _command(argv: Sequence[str], netns: str | None) -> list[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return [*prefix, *argv]


@contextlib.contextmanager
def _arping_errors(device: str) -> Iterator[None]:
    """The one place a failed arping becomes HostNetworkError; "no
    reply" (exit 1, nothing on stderr) is the expected outcome of
    unsolicited ARP.

    NOTE: Habets' arping also exits 1 for a missing device, but says so
    on stderr (``libnet_check_iface() ioctl: No such device``)."""
    try:
        yield
    except subprocess.CalledProcessError as exc:
        if (
            exc.returncode == ARPING_NO_REPLY
            and not (exc.stderr or "").strip()
        ):
            return
        raise exception.HostNetworkError(
            reason=f"arping on {device}: "
            f"{' '.join((exc.stderr or '').split())}"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise exception.HostNetworkError(
            reason=f"arping on {device}: {exc}"
        ) from exc


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
            "arping", "-q", "-U", "-P", "-W", "0.2", "-c", str(count),
            "-i", device, "-S", str(address), str(address),
        ]  # fmt: skip
    return ["arping", "-U", "-A", "-I", device, "-c", str(count), str(address)]


class Arping:
    """Send gratuitous ARPs (in ``netns`` if given)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def __repr__(self) -> str:
        return f"Arping(netns={self.netns!r})"

    def announce(
        self, device: str, address: netaddr.IPAddress, count: int
    ) -> None:
        """Send ``count`` gratuitous ARPs for ``address`` on ``device``.
        Raises HostNetworkError (a missing arping, a missing device)."""
        with _arping_errors(device):
            argv = arping_argv(device, address, count, _arping_is_habets())
            subprocess.run(
                _command(argv, self.netns),
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
