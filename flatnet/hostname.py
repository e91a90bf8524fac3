"""Instance host names: validation (pure).

A host name goes into dnsmasq's hosts file (``mac,name.domain,ip``), the
metadata service and DNS, so only RFC 1123 labels are accepted: 1-63
characters of ``[A-Za-z0-9-]``, not starting or ending with ``-``. Names
are stored in lower case because DNS is case-insensitive, which also makes
``VM1`` and ``vm1`` the same instance for uniqueness.

nova's truncation of long names for dnsmasq (``name[:2] + '-' +
name[-60:]``, LP 1238910) belongs to rendering, not here.
"""

from __future__ import annotations

import re

from flatnet import exception

MAX_LABEL = 63
_LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")


def _reason(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name) > MAX_LABEL:
        return f"longer than {MAX_LABEL} characters"
    bad = sorted(
        {c for c in name if not (c.isascii() and c.isalnum())} - {"-"}
    )
    if bad:
        return (
            "contains characters other than A-Z, a-z, 0-9 and '-': "
            + ", ".join(repr(c) for c in bad)
        )
    if not _LABEL_RE.fullmatch(name):
        return "must not start or end with '-'"
    return None


def validate_hostname(name: str) -> str:
    """Return ``name`` in lower case if it is an RFC 1123 label.

    Raises InvalidHostname naming the problem otherwise (newline, comma,
    ``#``, white space, non-ASCII, too long, leading/trailing hyphen).
    """
    reason = _reason(name) if isinstance(name, str) else "not a string"
    if reason is not None:
        raise exception.InvalidHostname(hostname=name, reason=reason)
    return name.lower()
