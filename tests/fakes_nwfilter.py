"""FakeNWFilter: an in-memory NWFilterBackend with libvirt's rules.

It keeps the resulting state (name -> UUID and XML) and refuses what
libvirtd 9 refuses, with the same error codes: redefining a name with
another UUID ("already exists with uuid", VIR_ERR_OPERATION_FAILED,
LP#1360119), a UUID already used by another name, a filter that refers
to itself (loop), an unknown chain, undefining a filter a running guest
uses directly or through references (VIR_ERR_OPERATION_INVALID), and
undefining a name that does not exist (VIR_ERR_NO_NWFILTER). Like
libvirt it accepts references to filters that are not defined. The
contract suite (tests/functional/test_nwfilter_backends.py) runs it next
to the real libvirtd, which keeps it honest.
"""

from __future__ import annotations

import uuid as uuidlib

from flatnet import exception
from flatnet.linux import nwfilter as linux
from flatnet.plan import nwfilter as plan

CHAINS = ("root", "mac", "vlan", "stp", "arp", "rarp", "ipv4", "ipv6")


def _error(name: str, code: int, reason: str) -> exception.NWFilterError:
    return exception.NWFilterError(name=name, code=code, reason=reason)


class FakeNWFilter:
    def __init__(self) -> None:
        self.filters: dict[str, tuple[str, plan.NWFilter]] = {}
        #: filters a running guest's interface refers to (see attach)
        self.attached: set[str] = set()
        self.defines = 0
        # what libvirt-daemon-config-nwfilter installs (the ones nova uses)
        for name in plan.LIBVIRT_BUILTINS:
            self.filters[name] = (str(uuidlib.uuid4()), plan.NWFilter(name))

    def names(self) -> set[str]:
        return set(self.filters)

    def lookup(self, name: str) -> linux.LiveFilter | None:
        if name not in self.filters:
            return None
        uuid, flt = self.filters[name]
        return linux.LiveFilter(name, uuid, flt.xml(uuid))

    def define(self, xml: str) -> str:
        flt, uuid = plan.parse(xml)
        name = flt.name
        if not flt.chain.startswith(CHAINS):
            raise _error(name, 8, f"Invalid chain name '{flt.chain}'")
        if name in flt.refs:
            raise _error(name, 9, "filter would introduce a loop")
        if name in self.filters:
            old = self.filters[name][0]
            if uuid is not None and uuid != old:
                why = f"filter '{name}' already exists with uuid {old}"
                raise _error(name, linux.VIR_ERR_OPERATION_FAILED, why)
            uuid = old
        elif uuid is not None:
            for other, (used, _) in self.filters.items():
                if used == uuid:
                    why = (
                        f"filter with same UUID but different name ('{other}')"
                    )
                    raise _error(name, 9, why + " already exists")
        uuid = uuid or str(uuidlib.uuid4())
        self.filters[name] = (uuid, flt)
        self.defines += 1
        return uuid

    def undefine(self, name: str) -> bool:
        if name not in self.filters:
            return False
        if name in self._in_use():
            raise _error(name, linux.VIR_ERR_OPERATION_INVALID,
                         "nwfilter is in use")  # fmt: skip
        del self.filters[name]
        return True

    # --- a guest using a filter (what a running domain does) ------------
    def attach(self, name: str) -> None:
        self.attached.add(name)

    def detach(self, name: str) -> None:
        self.attached.discard(name)

    def _in_use(self) -> set[str]:
        used: set[str] = set()
        todo = list(self.attached)
        while todo:
            name = todo.pop()
            if name in used:
                continue
            used.add(name)
            if name in self.filters:
                todo.extend(self.filters[name][1].refs)
        return used
