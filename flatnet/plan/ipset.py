"""IP sets as data: names, desired sets, ``ipset save`` parsing, and the
``ipset restore`` payloads that reach them (PURE).

A remote security group becomes one ``hash:net`` set of its member
addresses (:class:`IpSetSpec`), matched by one iptables rule whatever
the number of members. :func:`plan_ensure` turns the live sets of our
prefix into the desired ones in one ``ipset restore`` payload: a new set
is created and filled under its name (no rule references it yet: the
caller applies iptables afterwards); a changed set gets its few added
members first and removed members second (each one atomic, and no
member kept in both states is ever missing), or, when much changed, is
built under a temporary name and ``swap``ped in (one atomic exchange,
ipset(8) ``swap``). :func:`plan_prune` destroys the sets no longer
wanted: the caller runs it only after the rules that used them are gone
(the kernel refuses to destroy a set still referenced).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence

import netaddr

from flatnet import exception

#: IPSET_MAXNAMELEN is 32 including the NUL (linux ip_set.h)
MAX_SET_NAME = 31
SET_TYPE = "hash:net"
FAMILY = "inet"
#: ipset's default maxelem; larger sets get the next power of two
DEFAULT_MAXELEM = 65536
#: the temporary twin of a set being rebuilt (then swapped in)
TEMP_SUFFIX = "-t"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_MEMBER_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$")


def validate_set_name(name: str) -> str:
    """Return ``name`` if it (and its temporary twin) fits ipset's limit
    and is made of ``[A-Za-z0-9_.-]``; else raise InvalidInput."""
    longest = MAX_SET_NAME - len(TEMP_SUFFIX)
    if not isinstance(name, str) or len(name) > longest:
        raise exception.InvalidInput(
            reason=f"ipset name {name!r} is longer than {longest} chars"
        )
    if not _NAME_RE.match(name) or name.endswith(TEMP_SUFFIX):
        raise exception.InvalidInput(
            reason=f"ipset name {name!r} must be [A-Za-z0-9_.-] "
            f"and not end in {TEMP_SUFFIX!r}"
        )
    return name


def member_text(value: netaddr.IPAddress | netaddr.IPNetwork) -> str:
    """A member as ``ipset save`` prints it in a hash:net set: a host
    without ``/32``, a network as ``a.b.c.d/n``."""
    if isinstance(value, netaddr.IPNetwork):
        if value.prefixlen == 32:
            return str(value.ip)
        return str(value.cidr)
    return str(value)


def set_members(
    values: Iterable[netaddr.IPAddress | netaddr.IPNetwork],
) -> frozenset[str]:
    """IPv4 addresses or networks as set members (see member_text)."""
    return frozenset(map(member_text, values))


def owned_set(name: str, prefix: str) -> bool:
    """True if set ``name`` belongs to ``prefix`` (exact prefix)."""
    return name.startswith(f"{prefix}-")


def _maxelem(count: int) -> int:
    size = DEFAULT_MAXELEM
    while size < count:
        size *= 2
    return size


@dataclasses.dataclass(frozen=True, slots=True)
class IpSetSpec:
    """A set we want: ``hash:net``, ``inet``, these members (canonical
    text, see :func:`set_members`). Raises InvalidInput."""

    name: str
    members: frozenset[str] = frozenset()
    set_type: str = SET_TYPE
    family: str = FAMILY

    def __post_init__(self) -> None:
        validate_set_name(self.name)
        for member in self.members:
            if not _MEMBER_RE.match(member):
                raise exception.InvalidInput(
                    reason=f"ipset {self.name}: bad member {member!r}"
                )

    @property
    def maxelem(self) -> int:
        """Room for every member (at least ipset's default)."""
        return _maxelem(len(self.members))

    def create_line(self, name: str | None = None) -> str:
        """``create`` for this set (under ``name`` if given)."""
        return (
            f"create {name or self.name} {self.set_type} family "
            f"{self.family} maxelem {self.maxelem}"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class LiveSet:
    """A set as ``ipset save`` shows it."""

    name: str
    set_type: str
    family: str
    members: frozenset[str]

    @classmethod
    def of(cls, spec: IpSetSpec) -> LiveSet:
        """What ``spec`` looks like once applied."""
        return cls(spec.name, spec.set_type, spec.family, spec.members)


def parse_save(text: str) -> dict[str, LiveSet]:
    """Parse ``ipset save`` output into sets by name (every set: the
    caller keeps those it owns)."""
    headers: dict[str, tuple[str, str]] = {}
    members: dict[str, set[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "add":
            members.setdefault(parts[1], set()).add(parts[2])
        elif len(parts) >= 3 and parts[0] == "create":
            opts = dict(zip(parts[3::2], parts[4::2], strict=False))
            headers[parts[1]] = (parts[2], opts.get("family", ""))
            members.setdefault(parts[1], set())
    return {
        name: LiveSet(name, kind, family, frozenset(members[name]))
        for name, (kind, family) in headers.items()
    }


@dataclasses.dataclass(frozen=True)
class IpsetPlan:
    """One ``ipset restore`` payload and what it does, by set name."""

    lines: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    swapped: tuple[str, ...] = ()
    destroyed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.lines

    def set_of_line(self, number: int) -> str:
        """The set line ``number`` (1-based) acts on: for a swap or a
        temporary set, the real set's name."""
        parts = self.lines[number - 1].split()
        name = parts[2] if parts[0] == "swap" else parts[1]
        return name.removesuffix(TEMP_SUFFIX)


def _small(live: LiveSet, spec: IpSetSpec) -> bool:
    changes = len(live.members ^ spec.members)
    return changes <= max(8, len(spec.members) // 8)


def _rebuild(spec: IpSetSpec, live: LiveSet) -> tuple[list[str], str]:
    """Lines turning ``live`` into ``spec``, and how ("updated",
    "swapped" or "created" for a set of another type, destroyed first)."""
    if (live.set_type, live.family) != (spec.set_type, spec.family):
        return [f"destroy {spec.name}", *_fill(spec, spec.name)], "created"
    if _small(live, spec):
        adds = sorted(spec.members - live.members, key=_member_key)
        dels = sorted(live.members - spec.members, key=_member_key)
        return [
            *(f"add {spec.name} {m}" for m in adds),
            *(f"del {spec.name} {m}" for m in dels),
        ], "updated"
    temp = spec.name + TEMP_SUFFIX
    return [
        *_fill(spec, temp),
        f"swap {temp} {spec.name}",
        f"destroy {temp}",
    ], "swapped"


def _fill(spec: IpSetSpec, name: str) -> list[str]:
    members = sorted(spec.members, key=_member_key)
    return [spec.create_line(name), *(f"add {name} {m}" for m in members)]


def _member_key(member: str) -> tuple[int, ...]:
    address, _, length = member.partition("/")
    return (*map(int, address.split(".")), int(length or 32))


def plan_ensure(
    live: Mapping[str, LiveSet], desired: Sequence[IpSetSpec]
) -> IpsetPlan:
    """The payload creating or updating every desired set (``live``:
    the sets of our prefix). Leftover temporary sets (a crash between
    build and swap) are destroyed first. Nothing is destroyed otherwise:
    that is :func:`plan_prune`'s job, after the iptables apply."""
    lines = [f"destroy {n}" for n in sorted(live) if n.endswith(TEMP_SUFFIX)]
    done: dict[str, list[str]] = {"created": [], "updated": [], "swapped": []}
    for spec in sorted(desired, key=lambda s: s.name):
        have = live.get(spec.name)
        if have is None:
            lines += _fill(spec, spec.name)
            done["created"].append(spec.name)
        elif have != LiveSet.of(spec):
            more, how = _rebuild(spec, have)
            lines += more
            done[how].append(spec.name)
    return IpsetPlan(
        tuple(lines),
        tuple(done["created"]),
        tuple(done["updated"]),
        tuple(done["swapped"]),
    )


def plan_prune(live: Iterable[str], desired: Sequence[IpSetSpec]) -> IpsetPlan:
    """The payload destroying our sets (``live``: their names) that are
    not desired, temporary ones included."""
    wanted = {spec.name for spec in desired}
    gone = tuple(sorted(name for name in live if name not in wanted))
    return IpsetPlan(tuple(f"destroy {name}" for name in gone), destroyed=gone)


def diff_sets(
    live: Mapping[str, LiveSet], desired: Sequence[IpSetSpec]
) -> list[str]:
    """Readable differences for ``verify`` (empty: all is well)."""
    out = []
    wanted = {spec.name: spec for spec in desired}
    for name, spec in sorted(wanted.items()):
        have = live.get(name)
        if have is None:
            out.append(f"ipset {name}: missing")
        elif (have.set_type, have.family) != (spec.set_type, spec.family):
            out.append(f"ipset {name}: is {have.set_type} {have.family}")
        else:
            missing = len(spec.members - have.members)
            extra = len(have.members - spec.members)
            if missing or extra:
                out.append(f"ipset {name}: {missing} missing, {extra} extra")
    out += [f"ipset {name}: stale" for name in sorted(set(live) - set(wanted))]
    return out
