"""PURE: nova column values as flatnet stores them (for nova_plan).

Addresses come back as text on SQLite/MySQL and as ``ipaddress``
objects (with a prefix for INET) on PostgreSQL; canonical text is
passed through without parsing (tens of thousands of rows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import netaddr

from flatnet import exception

# Canonical text needs no parsing (a fast path: 10,000s of rows).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


def where(table: str, row: Mapping[str, Any]) -> str:
    return f"nova {table} id {row.get('id')}"


def ip_text(value: Any, table: str, row: Mapping[str, Any]) -> str | None:
    """An address column as text (PostgreSQL INET may carry a prefix)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and _IPV4.fullmatch(value):
        return value
    try:
        return str(netaddr.IPAddress(str(value).split("/")[0]))
    except (netaddr.AddrFormatError, ValueError) as exc:
        raise exception.InvalidInput(
            reason=f"{where(table, row)}: {value!r} is not an IP address"
        ) from exc


def cidr_text(value: Any, table: str, row: Mapping[str, Any]) -> str | None:
    if value is None or value == "":
        return None
    try:
        return str(netaddr.IPNetwork(str(value)).cidr)
    except (netaddr.AddrFormatError, ValueError) as exc:
        raise exception.InvalidInput(
            reason=f"{where(table, row)}: {value!r} is not a CIDR"
        ) from exc
