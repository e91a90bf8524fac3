"""Lease events as the hooks write them: parse, validate, format, append.

The import-light half of :mod:`flatnet.service.leases` (which re-exports
it): the Python hook (``flatnet-dhcpbridge add|old|del``) needs only this,
so that path never imports SQLAlchemy or oslo.config.
"""

from __future__ import annotations

import re
import socket

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
    (wrong action, non-Ethernet MAC, anything but a dotted IPv4 as
    inet_pton(3) takes it: four decimal octets, no leading zeros).

    Built from integers (the regexes and inet_pton validate): the
    daemon parses every journal line, ~4,000/s in a DHCP storm, and
    netaddr's text parsers cost ~4 us per field."""
    if action not in ACTIONS or not _MAC.match(mac):
        return None
    if not _IPV4.match(address):
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET, address)
    except OSError:
        return None
    ip = netaddr.IPAddress(int.from_bytes(packed, "big"), 4)
    eui = netaddr.EUI(int(mac.replace(":", ""), 16), 48)
    return model.LeaseEvent(action=action, mac=eui, address=ip)


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
