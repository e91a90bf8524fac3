"""Kernel sysctls the network host needs (procfs, current namespace)."""

from __future__ import annotations

import logging

from flatnet import exception

LOG = logging.getLogger(__name__)
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def ensure_ip_forward(path: str = IP_FORWARD) -> bool:
    """Enable IPv4 forwarding, as nova's ``_enable_ipv4_forwarding``;
    returns True if it had to change it. Raises HostNetworkError.

    NOTE: nova's ``linux_net._enable_ipv4_forwarding`` compared the
    sysctl output with ``is not '1'`` (identity, not equality);
    this compares values.
    """
    try:
        with open(path, encoding="ascii") as current:
            if current.read().strip() == "1":
                return False
        with open(path, "w", encoding="ascii") as target:
            target.write("1\n")
    except OSError as exc:
        raise exception.HostNetworkError(
            reason=f"cannot enable {path}: {exc}"
        ) from exc
    LOG.info("enabled IPv4 forwarding (%s)", path)
    return True
