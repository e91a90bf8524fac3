"""Value-object builders for tests (no I/O)."""

from __future__ import annotations

from typing import Any

import netaddr

from flatnet.model import Network


def flat_network(
    cidr: str = "10.0.0.0/24", bridge: str = "br100", **overrides: Any
) -> Network:
    """A Network as ``network create`` would store it: gateway and DHCP
    server on the first host of ``cidr``."""
    net = netaddr.IPNetwork(cidr)
    first = netaddr.IPAddress(net.first + 1)
    fields: dict[str, Any] = {
        "id": 1,
        "uuid": "u1",
        "label": "n1",
        "cidr": net,
        "gateway": first,
        "dhcp_server": first,
        "dhcp_start": None,
        "broadcast": net.broadcast,
        "netmask": net.netmask,
        "bridge": bridge,
        "bridge_interface": None,
    }
    fields.update(overrides)
    return Network(**fields)
