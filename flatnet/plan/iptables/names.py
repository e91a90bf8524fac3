"""Chain names: the kernel limit, the wrap prefix, ownership.

PURE. Every chain a :class:`~flatnet.plan.iptables.RuleSet` names is
checked here (:func:`validate_chain_name`, :func:`validate_prefix`);
ownership is by exact chain-name prefix (:func:`is_owned_chain`), never
by substring: nova's ``IptablesTable._modify_rules`` dropped every line
that merely contained the binary name.
"""

from __future__ import annotations

import functools
import re

from flatnet import exception

# NOTE: XT_EXTENSION_MAXNAMELEN is 29 including the NUL (neutron's 28).
MAX_CHAIN_NAME = 28
# nova truncated the binary name to 16; the longest suffix is 12
# ("-POSTROUTING"), so 16 + 12 = 28.
MAX_WRAP_PREFIX = 16
#: Shared chains of nova's IptablesManager: every binary (nova-network,
#: nova-compute) adds its jump there, so they are never flushed.
FILTER_TOP = "nova-filter-top"
POSTROUTING_BOTTOM = "nova-postrouting-bottom"
SHARED_CHAINS = frozenset({FILTER_TOP, POSTROUTING_BOTTOM})
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def validate_chain_name(name: str) -> str:
    """Return ``name`` if it is a valid chain name.

    Raises InvalidIptablesRule if it is longer than MAX_CHAIN_NAME or
    contains anything but ``[A-Za-z0-9_.-]``.
    """
    if len(name) > MAX_CHAIN_NAME or not _NAME_RE.match(name):
        raise exception.InvalidIptablesRule(
            rule=name,
            reason=f"chain names are 1-{MAX_CHAIN_NAME} chars "
            "of [A-Za-z0-9_.-]",
        )
    return name


def validate_prefix(prefix: str) -> str:
    """Return the wrap prefix if valid (<= MAX_WRAP_PREFIX chars, and
    not a prefix of a shared chain)."""
    if len(prefix) > MAX_WRAP_PREFIX or not _NAME_RE.match(prefix):
        raise exception.InvalidIptablesRule(
            rule=prefix,
            reason=f"wrap prefix must be 1-{MAX_WRAP_PREFIX} "
            "chars of [A-Za-z0-9_.-]",
        )
    if any(shared.startswith(f"{prefix}-") for shared in SHARED_CHAINS):
        raise exception.InvalidIptablesRule(
            rule=prefix, reason="wrap prefix collides with a shared chain"
        )
    return prefix


@functools.lru_cache(maxsize=65536)
def wrap(prefix: str, name: str) -> str:
    """``<prefix>-<name>``, validated (nova's ``$name``)."""
    return validate_chain_name(f"{prefix}-{name}")


def is_owned_chain(name: str, prefix: str) -> bool:
    """True if chain ``name`` belongs to ``prefix`` (exact prefix match)."""
    return name.startswith(f"{prefix}-") and name not in SHARED_CHAINS
