"""This host's name and primary IPv4: the defaults of ``host`` and
``my_ip`` (nova's ``[DEFAULT] host`` = ``socket.gethostname()`` and
``my_ip`` = the source address of the default route, nova.conf.netconf).

Light on purpose: the settings cache keys on them without loading
oslo.config."""

from __future__ import annotations

import socket


def hostname() -> str:
    """``socket.gethostname()``, nova's ``host`` default."""
    return socket.gethostname()


def primary_ipv4() -> str:
    """The host's primary IPv4, as nova's ``my_ip`` default.

    NOTE: connect() on a UDP socket only selects a route and source
    address; no packet is sent. 192.0.2.1 is TEST-NET-1 (RFC 5737).
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            return str(sock.getsockname()[0])
    except OSError:
        return "127.0.0.1"
