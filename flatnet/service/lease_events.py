"""Lease events as the hooks write them: parse, validate, format, append.

The import-light half of :mod:`flatnet.service.leases` (which re-exports
it): the Python hook (``flatnet-dhcpbridge add|old|del``) needs only this,
so that path never imports SQLAlchemy or oslo.config.
"""

from __future__ import annotations

import re

import netaddr

from flatnet import model
from flatnet.linux import journal
from flatnet.plan import dnsmasq_files as plan

ACTIONS = ("add", "old", "del")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def parse_event(
    action: str, mac: str, address: str
) -> model.LeaseEvent | None:
    """A validated event, or None if any field is not what dnsmasq sends
    (wrong action, non-Ethernet MAC, anything but a dotted IPv4)."""
    if action not in ACTIONS or not _MAC.match(mac):
        return None
    if not _IPV4.match(address):
        return None
    try:
        ip = netaddr.IPAddress(address, version=4, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError):
        return None
    return model.LeaseEvent(action=action, mac=netaddr.EUI(mac), address=ip)


def parse_line(line: str) -> model.LeaseEvent | None:
    """Parse one journal line ``<action> <mac> <ip>`` (None if bad)."""
    fields = line.split(" ")
    if len(fields) != 3:
        return None
    return parse_event(*fields)


def event_line(event: model.LeaseEvent) -> str:
    """The journal line of ``event`` (same format as the sh hook)."""
    mac = "" if event.mac is None else plan.mac_text(event.mac)
    return f"{event.action} {mac} {event.address}"


def record_event(events_path: str, event: model.LeaseEvent) -> None:
    """Append ``event`` to the journal (one write). Raises OSError."""
    journal.append_line(events_path, event_line(event))
