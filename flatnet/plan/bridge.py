"""What the bridge of a flat network should look like (pure).

``bridge_spec()`` turns a :class:`flatnet.model.Network` plus the
``flat_interface`` setting into a validated :class:`BridgeSpec` that
:mod:`flatnet.linux.bridge` applies. No I/O, no CONF.
"""

from __future__ import annotations

import dataclasses

import netaddr

from flatnet import exception
from flatnet.model import Network
from flatnet.plan.settings import (  # re-exported (this planner's names)
    IFNAMSIZ as IFNAMSIZ,  # noqa: PLC0414
)
from flatnet.plan.settings import (
    validate_device_name as validate_device_name,  # noqa: PLC0414
)

#: Smallest MTU an IPv4 link may have (RFC 791).
MIN_MTU = 68
MAX_MTU = 65535


@dataclasses.dataclass(frozen=True, slots=True)
class BridgeSpec:
    """A Linux bridge with an optional uplink and gateway address.

    ``gateway`` (the DHCP server address with the network's prefix
    length) must end up as the FIRST IPv4 address on the bridge, since
    dnsmasq listens on it. Construction validates every field and
    raises an InvalidInput subclass on bad values.
    """

    name: str
    interface: str | None
    gateway: netaddr.IPNetwork | None
    mtu: int | None = None

    def __post_init__(self) -> None:
        validate_device_name(self.name)
        if self.interface is not None:
            validate_device_name(self.interface)
            if self.interface == self.name:
                raise exception.InvalidDeviceName(
                    name=self.interface,
                    reason="the interface cannot be the bridge itself",
                )
        if self.gateway is not None and self.gateway.version != 4:
            raise exception.InvalidCidr(
                cidr=str(self.gateway), reason="the gateway must be IPv4"
            )
        if self.mtu is not None and not MIN_MTU <= self.mtu <= MAX_MTU:
            raise exception.InvalidInput(
                reason=f"MTU {self.mtu} is outside {MIN_MTU}-{MAX_MTU}"
            )


def bridge_spec(network: Network, flat_interface: str | None) -> BridgeSpec:
    """The bridge a host must provide for ``network``.

    ``flat_interface`` (the host setting) overrides the network's
    ``bridge_interface`` (nova ``test_flat_override``); empty strings
    mean "no interface". The gateway is ``dhcp_server/prefixlen``.

    Raises InvalidDeviceName, InvalidCidr, AddressOutOfRange or
    InvalidInput on bad values.
    """
    interface = flat_interface or network.bridge_interface or None
    gateway = None
    if network.dhcp_server is not None:
        if network.dhcp_server not in network.cidr:
            raise exception.AddressOutOfRange(
                address=network.dhcp_server, network=network.cidr
            )
        gateway = netaddr.IPNetwork(
            f"{network.dhcp_server}/{network.cidr.prefixlen}"
        )
    return BridgeSpec(
        name=network.bridge,
        interface=interface,
        gateway=gateway,
        mtu=network.mtu,
    )
