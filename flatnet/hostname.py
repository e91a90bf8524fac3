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
MAX_TEXT = 255
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


def validate_domain(domain: str) -> str:
    """Return ``domain`` if it is empty or dot-separated RFC 1123 labels
    (``novalocal``, ``example.org``). Raises InvalidInput otherwise."""
    for label in domain.split(".") if domain else ():
        reason = _reason(label)
        if reason is not None:
            raise exception.InvalidInput(
                reason=f"{domain!r} is not a DNS domain name ({reason})"
            )
    return domain


def check_text(value: str, what: str) -> str:
    """``value`` if it is 1-255 printable characters without leading or
    trailing blanks (labels, pools, project ids, host names); else
    InvalidInput.

    "Printable" is :meth:`str.isprintable`: it refuses every control
    (C0, DEL and C1 such as ``\\x85`` and ``\\x9b``, which some terminals
    take as a command), format (e.g. U+200B), line and paragraph
    separator (U+2028, U+2029) and non-ASCII space character, so a value
    can neither break a line of output nor hide what it is.
    """
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_TEXT
        or not value.isprintable()
        or value.strip() != value
    ):
        raise exception.InvalidInput(
            reason=f"{what} {value!r} must be 1-{MAX_TEXT} printable "
            "characters without leading or trailing blanks"
        )
    return value
