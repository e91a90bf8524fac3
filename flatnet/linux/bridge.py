"""Linux bridges for flat networks, over rtnetlink (pyroute2).

Applies a :class:`flatnet.plan.bridge.BridgeSpec`: nova's
``LinuxBridgeInterfaceDriver.ensure_bridge`` plus
``initialize_gateway_device`` without shelling out to ip/brctl. Every
step reads first and writes only what differs, so a second run issues
no write request. Errors are translated in
:func:`flatnet.linux.netlink.netlink_errors` only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import netaddr

from flatnet import exception
from flatnet.linux import netlink
from flatnet.plan.bridge import BridgeSpec

LOG = logging.getLogger(__name__)

_T = TypeVar("_T")
_WAIT_TIMEOUT = 5.0
_WAIT_INTERVAL = 0.01
_IFF_UP = 0x1
_RT_TABLE_MAIN = 254
_RTPROT_KERNEL = 2
_RTN_UNICAST = 1
_RT_SCOPE_UNIVERSE = 0
_BR_DATA = ("linkinfo", "data")


@dataclasses.dataclass(frozen=True, slots=True)
class BridgeState:
    """A bridge as read back from the host (for checks and tests).

    ``addresses`` are the global IPv4 ``ip/prefixlen`` in kernel order;
    ``ports`` are sorted names of the enslaved devices.
    """

    name: str
    mac: str
    mtu: int
    up: bool
    stp: bool
    forward_delay: int
    ports: tuple[str, ...]
    addresses: tuple[str, ...]


class BridgeBackend(Protocol):
    """What the service layer needs from a bridge executor."""

    def ensure_bridge(self, spec: BridgeSpec) -> None: ...

    def delete_bridge(self, name: str) -> None: ...

    def link_exists(self, name: str) -> bool: ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Address:
    ip: str
    prefixlen: int
    broadcast: str | None = dataclasses.field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


#: A route as the keyword arguments of ``IPRoute.route()``.
_Route = dict[str, Any]
_ROUTE_KEYS = (
    "oif",
    "dst",
    "dst_len",
    "gateway",
    "priority",
    "proto",
    "scope",
    "prefsrc",
    "table",
)


class NetlinkBridge:
    """:class:`BridgeBackend` over rtnetlink, in ``netns`` if given.

    Opens one netlink socket per call (thread-safe, nothing held open).
    """

    def __init__(self, netns: str | None = None) -> None:
        self._netns = netns

    def ensure_bridge(self, spec: BridgeSpec) -> None:
        """Make the bridge match ``spec``; idempotent.

        Guarantees on return, as visible to netlink: the bridge exists,
        is up, STP off, forward delay 0, MTU ``spec.mtu`` if given; the
        interface is its port, up, and lends the bridge its MAC; the
        interface's global IPv4 addresses and main-table routes are on
        the bridge; ``spec.gateway`` is the bridge's first IPv4
        address. Raises DeviceNotFound if the interface is missing
        (nothing changed) and BridgeSetupError if it is a port of
        another bridge (nothing changed) or netlink fails.
        """
        with netlink.netlink_errors(spec.name), self._iproute() as ipr:
            port = _check_port(ipr, spec)
            bridge = _ensure_bridge_link(ipr, spec)
            port_index = None
            if port is not None:
                _ensure_port(ipr, spec, bridge, port)
                port_index = port["index"]
            desired = _ensure_addresses(ipr, spec, bridge["index"], port_index)
            _wait(
                lambda: _shows(ipr, bridge["index"], desired),
                spec.name,
                f"addresses {[str(a) for a in desired]}",
            )

    def delete_bridge(self, name: str) -> None:
        """Take the bridge down and delete it; no error if absent.

        Raises BridgeSetupError if ``name`` exists but is not a bridge.
        """
        with netlink.netlink_errors(name), self._iproute() as ipr:
            link = _link(ipr, name)
            if link is None:
                return
            _require_bridge(link, name)
            LOG.info("Deleting bridge %s", name)
            ipr.link("set", index=link["index"], state="down")
            with netlink.tolerating(errno.ENODEV):
                ipr.link("del", index=link["index"])
            _wait(lambda: not ipr.link_lookup(ifname=name), name, "removal")

    def link_exists(self, name: str) -> bool:
        """Whether any network device called ``name`` exists."""
        with netlink.netlink_errors(name), self._iproute() as ipr:
            return bool(ipr.link_lookup(ifname=name))

    def bridge_state(self, name: str) -> BridgeState | None:
        """The bridge read back via netlink; None if no such bridge."""
        with netlink.netlink_errors(name), self._iproute() as ipr:
            link = _link(ipr, name)
            if link is None or link.get(("linkinfo", "kind")) != "bridge":
                return None
            ports = sorted(
                str(p.get("ifname"))
                for p in ipr.get_links()
                if p.get("master") == link["index"]
            )
            return BridgeState(
                name=name,
                mac=str(link.get("address")),
                mtu=int(link.get("mtu")),
                up=bool(link["flags"] & _IFF_UP),
                stp=bool(link.get((*_BR_DATA, "br_stp_state"))),
                forward_delay=int(link.get((*_BR_DATA, "br_forward_delay"))),
                ports=tuple(ports),
                addresses=tuple(
                    str(a) for a in _addresses(ipr, link["index"])
                ),
            )

    @contextlib.contextmanager
    def _iproute(self) -> Iterator[Any]:
        ipr = self._open()
        try:
            yield ipr
        finally:
            ipr.close()

    def _open(self) -> Any:
        return netlink.open_iproute(self._netns)


def _check_port(ipr: Any, spec: BridgeSpec) -> Any:
    """The interface's link, refusing to steal it from another bridge."""
    if spec.interface is None:
        return None
    port = _link(ipr, spec.interface)
    if port is None:
        raise exception.DeviceNotFound(device=spec.interface)
    master = port.get("master")
    if master and ipr.link_lookup(ifname=spec.name) != [master]:
        (other,) = ipr.link("get", index=master)
        raise exception.BridgeSetupError(
            device=spec.interface,
            reason=f"it is already a port of {other.get('ifname')}, "
            f"not of {spec.name}",
        )
    return port


def _ensure_bridge_link(ipr: Any, spec: BridgeSpec) -> Any:
    """Create the bridge if missing, then fix STP, delay, MTU, state."""
    link = _link(ipr, spec.name)
    if link is None:
        LOG.info("Creating bridge %s", spec.name)
        mtu = {"mtu": spec.mtu} if spec.mtu else {}
        with netlink.tolerating(errno.EEXIST):
            ipr.link(
                "add",
                ifname=spec.name,
                kind="bridge",
                state="up",
                br_forward_delay=0,
                br_stp_state=0,
                **mtu,
            )
        link = _wait(lambda: _link(ipr, spec.name), spec.name, "the link")
    _require_bridge(link, spec.name)
    index = link["index"]
    # NOTE: STP must be off before the delay may drop below 2 s (ERANGE,
    # kernel br_set_forward_delay), so two requests in this order.
    if link.get((*_BR_DATA, "br_stp_state")) != 0:
        ipr.link("set", index=index, kind="bridge", br_stp_state=0)
    if link.get((*_BR_DATA, "br_forward_delay")) != 0:
        ipr.link("set", index=index, kind="bridge", br_forward_delay=0)
    _ensure_mtu_and_up(ipr, link, spec.mtu)
    return link


def _ensure_port(ipr: Any, spec: BridgeSpec, bridge: Any, port: Any) -> None:
    """Enslave the interface, bring it up, pin the bridge MAC to it."""
    enslaved_now = port.get("master") != bridge["index"]
    if enslaved_now:
        LOG.info("Adding %s to bridge %s", spec.interface, spec.name)
        ipr.link("set", index=port["index"], master=bridge["index"])
    _ensure_mtu_and_up(ipr, port, spec.mtu)
    # NOTE: setting the MAC explicitly (addr_assign_type NET_ADDR_SET)
    # stops the bridge from taking the lowest port MAC as ports come and
    # go; netlink does not expose that flag, so set it whenever we
    # enslave the port or the MAC differs.
    mac = port.get("address")
    (current,) = ipr.link("get", index=bridge["index"])
    if enslaved_now or current.get("address") != mac:
        ipr.link("set", index=bridge["index"], address=mac)


def _ensure_mtu_and_up(ipr: Any, link: Any, mtu: int | None) -> None:
    if mtu and link.get("mtu") != mtu:
        ipr.link("set", index=link["index"], mtu=mtu)
    if not link["flags"] & _IFF_UP:
        ipr.link("set", index=link["index"], state="up")


def _ensure_addresses(
    ipr: Any, spec: BridgeSpec, bridge: int, port: int | None
) -> tuple[_Address, ...]:
    """Move the port's addresses and routes; put the gateway first.

    As nova's ``initialize_gateway_device``: if another address comes
    first, every address is removed and re-added after the gateway, and
    routes via the bridge are saved and restored around that. Returns
    the addresses the bridge must show, gateway first.
    """
    gateway = spec.gateway
    current = _addresses(ipr, bridge)
    moving = _addresses(ipr, port) if port is not None else []
    first = (
        [_Address(str(gateway.ip), gateway.prefixlen, _broadcast(gateway))]
        if gateway is not None
        else []
    )
    reorder = bool(first and current and current[0] != first[0])
    desired = tuple(dict.fromkeys([*first, *current, *moving]))
    routes = _routes(ipr, port) if port is not None else []
    routes += _routes(ipr, bridge) if reorder else []
    if not (moving or routes or reorder or set(desired) - set(current)):
        return desired
    LOG.info(
        "Bridge %s: moving %d address(es) and %d route(s) from %s, "
        "gateway %s first",
        spec.name,
        len(moving),
        len(routes),
        spec.interface,
        gateway,
    )
    for route in routes:
        with netlink.tolerating(errno.ESRCH):
            ipr.route("del", **route)
    if port is not None:
        _delete_addresses(ipr, port, moving)
    if reorder:
        _delete_addresses(ipr, bridge, current)
        current = []
    _add_addresses(ipr, bridge, [a for a in desired if a not in current])
    _add_routes(ipr, bridge, routes)
    return desired


def _add_addresses(ipr: Any, index: int, addresses: list[_Address]) -> None:
    for address in addresses:
        extra = {"broadcast": address.broadcast} if address.broadcast else {}
        with netlink.tolerating(errno.EEXIST):
            ipr.addr(
                "add",
                index=index,
                address=address.ip,
                prefixlen=address.prefixlen,
                **extra,
            )


def _delete_addresses(ipr: Any, index: int, addresses: list[_Address]) -> None:
    # Reverse order: removing a primary first would take its
    # secondaries with it (or promote them, with promote_secondaries).
    for address in reversed(addresses):
        with netlink.tolerating(errno.EADDRNOTAVAIL):
            ipr.addr(
                "del",
                index=index,
                address=address.ip,
                prefixlen=address.prefixlen,
            )


def _add_routes(ipr: Any, bridge: int, routes: list[_Route]) -> None:
    # Direct routes first: a gateway must be on-link before its routes.
    for route in sorted(routes, key=lambda r: "gateway" in r):
        with netlink.tolerating(errno.EEXIST):
            ipr.route("add", **{**route, "oif": bridge})


def _link(ipr: Any, name: str) -> Any:
    """The link message of `name`, or None if there is no such device."""
    indexes = ipr.link_lookup(ifname=name)
    return ipr.link("get", index=indexes[0])[0] if indexes else None


def _require_bridge(link: Any, name: str) -> None:
    kind = link.get(("linkinfo", "kind"))
    if kind != "bridge":
        raise exception.BridgeSetupError(
            device=name,
            reason=f"it exists as a {kind or 'plain'} device, not a bridge",
        )


def _addresses(ipr: Any, index: int) -> list[_Address]:
    """Global-scope IPv4 addresses of ``index``, in kernel order."""
    return [
        _Address(
            str(m.get("local") or m.get("address")),
            int(m["prefixlen"]),
            m.get("broadcast"),
        )
        for m in ipr.get_addr(family=socket.AF_INET, index=index)
        if m["scope"] == _RT_SCOPE_UNIVERSE
    ]


def _routes(ipr: Any, index: int) -> list[_Route]:
    """Main-table unicast IPv4 routes out of ``index``, except the
    kernel's own (connected) routes, which follow the addresses."""
    return [
        {k: m.get(k) for k in _ROUTE_KEYS if m.get(k) is not None}
        for m in ipr.route("dump", family=socket.AF_INET)
        if m.get("oif") == index
        and m.get("table") == _RT_TABLE_MAIN
        and m["proto"] != _RTPROT_KERNEL
        and m["type"] == _RTN_UNICAST
    ]


def _shows(ipr: Any, index: int, desired: tuple[_Address, ...]) -> bool:
    current = _addresses(ipr, index)
    return set(desired) <= set(current) and (
        not desired or current[0] == desired[0]
    )


def _broadcast(network: netaddr.IPNetwork) -> str | None:
    return str(network.broadcast) if network.broadcast is not None else None


def _wait(probe: Callable[[], _T], device: str, what: str) -> _T:
    """Poll ``probe`` until truthy: netlink changes are asynchronous."""
    deadline = time.monotonic() + _WAIT_TIMEOUT
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise exception.BridgeSetupError(
                device=device,
                reason=f"{what} not visible after {_WAIT_TIMEOUT:.0f} s",
            )
        time.sleep(_WAIT_INTERVAL)
    return result
