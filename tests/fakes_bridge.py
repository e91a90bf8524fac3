"""FakeBridge: an in-memory BridgeBackend that records resulting state.

It models what flatnet relies on from the kernel: links with a MAC, MTU,
up flag and master; global IPv4 addresses in order; bridges with STP and
forward delay. tests/functional/test_bridge_contract.py runs the same
suite against it and NetlinkBridge, which keeps it honest.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable

from flatnet import exception
from flatnet.linux.bridge import BridgeState
from flatnet.plan.bridge import BridgeSpec

_macs = itertools.count(1)


def _new_mac() -> str:
    n = next(_macs)
    return f"02:fa:00:00:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"


@dataclasses.dataclass
class FakeLink:
    """One network device of the fake host."""

    name: str
    mac: str = dataclasses.field(default_factory=_new_mac)
    mtu: int = 1500
    up: bool = False
    master: str | None = None
    bridge: bool = False
    stp: bool = False
    forward_delay: int = 1500
    addresses: list[str] = dataclasses.field(default_factory=list)


class FakeBridge:
    """BridgeBackend over ``self.links`` (name -> FakeLink).

    ``writes`` counts state-changing steps, so tests can check that a
    second ``ensure_bridge`` changes nothing.
    """

    def __init__(self) -> None:
        self.links: dict[str, FakeLink] = {}
        self.writes = 0

    def add_interface(self, name: str, addresses: Iterable[str] = ()) -> None:
        """Test setup: a plain device (like a NIC) with addresses."""
        self.links[name] = FakeLink(name, up=True, addresses=list(addresses))

    def ensure_bridge(self, spec: BridgeSpec) -> None:
        port = self._check_port(spec)
        bridge = self.links.get(spec.name)
        if bridge is None:
            bridge = self.links[spec.name] = FakeLink(spec.name, bridge=True)
            self.writes += 1
        if not bridge.bridge:
            raise exception.BridgeSetupError(
                device=spec.name, reason="it exists but is not a bridge"
            )
        self._set(bridge, stp=False, forward_delay=0, up=True)
        if spec.mtu:
            self._set(bridge, mtu=spec.mtu)
        if port is not None:
            self._set(port, master=spec.name, up=True)
            self._set(bridge, mac=port.mac)
            if spec.mtu:
                self._set(port, mtu=spec.mtu)
        self._ensure_addresses(spec, bridge, port)

    def delete_bridge(self, name: str) -> None:
        link = self.links.get(name)
        if link is None:
            return
        if not link.bridge:
            raise exception.BridgeSetupError(
                device=name, reason="it exists but is not a bridge"
            )
        del self.links[name]
        for port in self.links.values():
            if port.master == name:
                port.master = None
        self.writes += 1

    def link_exists(self, name: str) -> bool:
        return name in self.links

    def bridge_state(self, name: str) -> BridgeState | None:
        link = self.links.get(name)
        if link is None or not link.bridge:
            return None
        ports = sorted(p.name for p in self.links.values() if p.master == name)
        return BridgeState(
            name=name,
            mac=link.mac,
            mtu=link.mtu,
            up=link.up,
            stp=link.stp,
            forward_delay=link.forward_delay,
            ports=tuple(ports),
            addresses=tuple(link.addresses),
        )

    def _check_port(self, spec: BridgeSpec) -> FakeLink | None:
        if spec.interface is None:
            return None
        port = self.links.get(spec.interface)
        if port is None:
            raise exception.DeviceNotFound(device=spec.interface)
        if port.master not in (None, spec.name):
            raise exception.BridgeSetupError(
                device=spec.interface,
                reason=f"it is already a port of {port.master}, "
                f"not of {spec.name}",
            )
        return port

    def _ensure_addresses(
        self, spec: BridgeSpec, bridge: FakeLink, port: FakeLink | None
    ) -> None:
        moving = port.addresses if port is not None else []
        first = [str(spec.gateway)] if spec.gateway is not None else []
        wanted = list(dict.fromkeys([*first, *bridge.addresses, *moving]))
        if port is not None:
            self._set(port, addresses=[])
        self._set(bridge, addresses=wanted)

    def _set(self, link: FakeLink, **changes: object) -> None:
        for key, value in changes.items():
            if getattr(link, key) != value:
                setattr(link, key, value)
                self.writes += 1
