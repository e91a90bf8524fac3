"""MAC addresses of virtual interfaces (pure).

nova's ``generate_mac_address``: ``fa:16:3e`` plus three random octets,
lower case and colon separated. ``fa`` rather than ``fe`` because libvirt
uses ``fe`` for the host side of tap devices (LP 921838).
"""

from __future__ import annotations

import re
from typing import Protocol

import netaddr

from flatnet import exception

OUI_PREFIX = (0xFA, 0x16, 0x3E)
#: Six hex octets, all separated by ``:`` or all by ``-`` (one kind).
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?P<sep>[:-])[0-9A-Fa-f]{2}"
                     r"((?P=sep)[0-9A-Fa-f]{2}){4}")  # fmt: skip


class RandomSource(Protocol):
    """The part of :class:`random.Random` that MAC generation uses."""

    def getrandbits(self, k: int, /) -> int: ...


def format_mac(mac: netaddr.EUI) -> str:
    """``fa:16:3e:00:00:01``: the dialect dnsmasq, libvirt and nova use."""
    return str(mac.format(netaddr.mac_unix_expanded))


def generate_mac(rng: RandomSource) -> netaddr.EUI:
    """Return a random ``fa:16:3e:xx:xx:xx`` MAC drawn from ``rng``."""
    tail = rng.getrandbits(24)
    octets = (*OUI_PREFIX, tail >> 16, (tail >> 8) & 0xFF, tail & 0xFF)
    return netaddr.EUI(":".join(f"{o:02x}" for o in octets))


def parse_mac(text: str) -> netaddr.EUI:
    """Parse an operator-supplied MAC and check it can be a NIC's address.

    Accepts ``aa:bb:cc:dd:ee:ff`` or ``aa-bb-cc-dd-ee-ff`` (not a mix).
    Raises InvalidMacAddress for anything else, and for multicast
    (including broadcast) and all-zero addresses.
    """
    if not isinstance(text, str) or not _MAC_RE.fullmatch(text):
        raise exception.InvalidMacAddress(
            mac=text, reason="expected six hex octets like fa:16:3e:00:00:01"
        )
    mac = netaddr.EUI(int(re.sub("[:-]", "", text), 16))
    value = int(mac)
    if value == 0:
        raise exception.InvalidMacAddress(mac=text, reason="all zeros")
    if (value >> 40) & 1:
        reason = (
            "broadcast"
            if value == 0xFFFFFFFFFFFF
            else "multicast (not unicast)"
        )
        raise exception.InvalidMacAddress(mac=text, reason=reason)
    return mac
