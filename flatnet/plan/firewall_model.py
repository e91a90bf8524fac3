"""Security groups and filtered instances as plain data (PURE).

The compute firewall's input: :class:`SecurityGroupRule` (validated as
nova's ``SecurityGroupBase._new_ingress_rule`` did: tcp/udp ports
1-65535 with from <= to, icmp type and code -1..255),
:class:`SecurityGroup`, :class:`FilteredNic`, :class:`FilteredInstance`
and :class:`HostFirewall` (the instances one host filters, the groups
they use and the member addresses of each group, on every host).
Every value is checked on construction and bad input raises
:class:`~flatnet.exception.InvalidInput` with a one-line reason, so the
CLI and the database layer reuse this validation (:func:`new_rule`,
:func:`parse_cidr`, :func:`parse_port_range`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import netaddr

from flatnet import exception
from flatnet.mac import parse_mac

PROTOCOLS = ("tcp", "udp", "icmp")
MIN_PORT, MAX_PORT = 1, 65535
#: icmp type and code range; -1 means "any" (nova's convention)
ANY, MAX_ICMP = -1, 255
_RANGE_RE = re.compile(r"^(-?\d+)(?::(-?\d+))?$")


def _bad(reason: str) -> exception.InvalidInput:
    return exception.InvalidInput(reason=f"security group rule: {reason}")


def parse_cidr(text: str) -> netaddr.IPNetwork:
    """An IPv4 CIDR as a rule source (nova's ``parse_cidr`` wanted the
    ``/``). Raises InvalidCidr: no ``/``, bad address or prefix, IPv6,
    or host bits set (``10.0.0.1/24``: which network was meant?)."""
    if not isinstance(text, str) or "/" not in text:
        raise exception.InvalidCidr(cidr=text, reason="expected a.b.c.d/n")
    try:
        net = netaddr.IPNetwork(text)
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise exception.InvalidCidr(cidr=text, reason="not a CIDR") from exc
    if net.version != 4:
        raise exception.InvalidCidr(cidr=text, reason="only IPv4 is filtered")
    if net.ip != net.network:
        raise exception.InvalidCidr(
            cidr=text, reason=f"host bits set (network is {net.cidr})"
        )
    return net


def parse_port_range(text: str) -> tuple[int, int]:
    """``"80"`` or ``"80:90"`` (or an icmp ``"type:code"``) as two
    integers; range checks are :class:`SecurityGroupRule`'s."""
    found = _RANGE_RE.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise _bad(f"port range {text!r} is not N or N:M")
    low = int(found.group(1))
    high = low if found.group(2) is None else int(found.group(2))
    return low, high


def _derived() -> Any:
    """A field computed in ``__post_init__``, not compared."""
    return dataclasses.field(init=False, repr=False, compare=False)


def _int_or_none(name: str, value: object) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        raise _bad(f"{name} must be an integer, not {value!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class SecurityGroupRule:
    """One ingress rule: traffic from ``cidr`` or from the members of
    group ``source_group`` (exactly one of them) is accepted.

    ``protocol`` None accepts every protocol (no ports then); tcp/udp
    need ``from_port``/``to_port``; for icmp they are the type and code
    (-1 or None: any). ``id`` orders rules as nova's DB order did.
    """

    protocol: str | None = None
    from_port: int | None = None
    to_port: int | None = None
    cidr: netaddr.IPNetwork | None = None
    source_group: int | None = None
    id: int = 0

    def __post_init__(self) -> None:
        self._check_source()
        _int_or_none("from_port", self.from_port)
        _int_or_none("to_port", self.to_port)
        proto = self.protocol
        if proto is not None:
            proto = str(proto).lower()
            object.__setattr__(self, "protocol", proto)
        if proto is None:
            if self.from_port is not None or self.to_port is not None:
                raise _bad("ports need a protocol (tcp, udp or icmp)")
        elif proto == "icmp":
            self._check_icmp()
        elif proto in ("tcp", "udp"):
            self._check_ports(proto)
        else:
            raise _bad(f"protocol must be tcp, udp or icmp, not {proto!r}")

    def _check_source(self) -> None:
        if (self.cidr is None) == (self.source_group is None):
            raise _bad("give either a cidr or a source group (one of them)")
        if self.cidr is not None:
            cidr = self.cidr
            if not isinstance(cidr, netaddr.IPNetwork):
                cidr = parse_cidr(cidr)
            elif cidr.version != 4 or cidr.ip != cidr.network:
                cidr = parse_cidr(str(cidr))
            object.__setattr__(self, "cidr", cidr)
        _int_or_none("source_group", self.source_group)

    def _check_ports(self, proto: str) -> None:
        low, high = self.from_port, self.to_port
        if low is None or high is None:
            raise _bad(f"{proto} needs a port range")
        for port in (low, high):
            if not MIN_PORT <= port <= MAX_PORT:
                raise _bad(
                    f"{proto} ports are {MIN_PORT}-{MAX_PORT}, not {port}"
                )
        if low > high:
            raise _bad(f"port range {low}:{high} is reversed (from > to)")

    def _check_icmp(self) -> None:
        kind = ANY if self.from_port is None else self.from_port
        code = ANY if self.to_port is None else self.to_port
        for what, value in (("type", kind), ("code", code)):
            if not ANY <= value <= MAX_ICMP:
                raise _bad(f"icmp {what} must be -1..{MAX_ICMP}, not {value}")
        if kind == ANY and code != ANY:
            raise _bad(f"icmp code {code} needs an icmp type")
        object.__setattr__(self, "from_port", kind)
        object.__setattr__(self, "to_port", code)

    @property
    def key(self) -> tuple[object, ...]:
        """What makes two rules the same (nova's ``rule_exists``)."""
        return (
            self.protocol,
            self.from_port,
            self.to_port,
            self.cidr,
            self.source_group,
        )


def new_rule(
    protocol: str | None,
    port_range: str | None = None,
    cidr: str | None = None,
    source_group: int | None = None,
    rule_id: int = 0,
) -> SecurityGroupRule:
    """A rule from API/CLI input, with nova's defaults
    (``_new_ingress_rule``, ``parse_cidr``): no cidr and no group means
    0.0.0.0/0; a group rule without ports opens tcp/udp 1:65535 and any
    icmp. Raises InvalidInput (InvalidCidr for the cidr)."""
    low: int | None = None
    high: int | None = None
    if port_range is not None:
        low, high = parse_port_range(port_range)
    proto = None if protocol is None else protocol.lower()
    if cidr is None and source_group is None:
        cidr = "0.0.0.0/0"
    if source_group is not None and port_range is None:
        if proto in ("tcp", "udp"):
            low, high = MIN_PORT, MAX_PORT
    net = None if cidr is None else parse_cidr(cidr)
    return SecurityGroupRule(proto, low, high, net, source_group, rule_id)


@dataclasses.dataclass(frozen=True, slots=True)
class SecurityGroup:
    """A security group: an id (what rules and set names use), a name
    (for messages) and its rules."""

    id: int
    name: str
    rules: tuple[SecurityGroupRule, ...] = ()

    def __post_init__(self) -> None:
        _int_or_none("group id", self.id)
        if self.id < 0:
            raise _bad(f"group id must be >= 0, not {self.id}")
        object.__setattr__(self, "rules", tuple(self.rules))


@functools.lru_cache(maxsize=1 << 17)
def _parse_ip(text: str) -> netaddr.IPAddress:
    return netaddr.IPAddress(text)


def ip_address(value: object) -> netaddr.IPAddress:
    """``value`` as an IPAddress: kept when it is one, else parsed
    (memoised by text: a host's sync parses the same addresses again
    and again, and netaddr parsing is the slow part of a read). The
    object is shared: never mutate it (netaddr allows it)."""
    if type(value) is netaddr.IPAddress:
        return value
    return _parse_ip(str(value))


@functools.lru_cache(maxsize=1 << 17)
def address_text(address: netaddr.IPAddress) -> str:
    """``str(address)``, memoised (netaddr formatting is slow)."""
    return str(address)


@functools.lru_cache(maxsize=4096)
def _network_text(text: str) -> netaddr.IPNetwork:
    return parse_cidr(str(netaddr.IPNetwork(text).cidr))


def network_of(value: object) -> netaddr.IPNetwork:
    """A NIC's network as a checked IPv4 CIDR (host bits dropped),
    memoised by text. Raises InvalidCidr."""
    return _network_text(str(value))


@functools.lru_cache(maxsize=4096)
def _profile(server: netaddr.IPAddress | None, cidr: netaddr.IPNetwork) -> str:
    return f"{server}|{cidr}"


@dataclasses.dataclass(frozen=True, slots=True)
class FilteredNic:
    """One NIC of a filtered instance on one flat network."""

    mac: netaddr.EUI
    addresses: tuple[netaddr.IPAddress, ...]
    network_cidr: netaddr.IPNetwork
    dhcp_server: netaddr.IPAddress | None = None
    #: derived once (netaddr formatting is slow): the addresses as text,
    #: and what the instance chain depends on ("server|cidr")
    address_text: tuple[str, ...] = _derived()
    profile: str = _derived()

    def __post_init__(self) -> None:
        if not isinstance(self.mac, netaddr.EUI):
            object.__setattr__(self, "mac", parse_mac(str(self.mac)))
        if self.dhcp_server is not None:
            object.__setattr__(
                self, "dhcp_server", ip_address(self.dhcp_server)
            )
        addresses = tuple(map(ip_address, self.addresses))
        if any(a.version != 4 for a in addresses):
            raise exception.InvalidInput(
                reason=f"NIC {self.mac}: only IPv4 addresses are filtered"
            )
        object.__setattr__(self, "addresses", addresses)
        cidr = network_of(self.network_cidr)
        object.__setattr__(self, "network_cidr", cidr)
        text = tuple(map(address_text, addresses))
        object.__setattr__(self, "address_text", text)
        object.__setattr__(self, "profile", _profile(self.dhcp_server, cidr))


@dataclasses.dataclass(frozen=True, slots=True)
class FilteredInstance:
    """An instance this host filters: its integer id names its chain
    (nova's ``inst-<id>``), its groups name its rules."""

    id: int
    uuid: str
    nics: tuple[FilteredNic, ...]
    security_groups: tuple[int, ...] = ()
    name: str = ""
    #: derived: every fixed address (and as text), NIC by NIC; the
    #: NICs' profiles
    addresses: tuple[netaddr.IPAddress, ...] = _derived()
    address_text: tuple[str, ...] = _derived()
    profile: tuple[str, ...] = _derived()

    def __post_init__(self) -> None:
        _int_or_none("instance id", self.id)
        if self.id < 0:
            raise exception.InvalidInput(reason=f"instance id {self.id} < 0")
        object.__setattr__(self, "nics", tuple(self.nics))
        object.__setattr__(
            self, "security_groups", tuple(self.security_groups)
        )
        found = tuple(a for nic in self.nics for a in nic.addresses)
        object.__setattr__(self, "addresses", found)
        text = tuple(a for nic in self.nics for a in nic.address_text)
        object.__setattr__(self, "address_text", text)
        profile = tuple(nic.profile for nic in self.nics)
        object.__setattr__(self, "profile", profile)


def group_members(
    instances: Iterable[FilteredInstance],
) -> dict[int, frozenset[netaddr.IPAddress]]:
    """group id -> fixed addresses of its member instances (pass every
    instance of the groups, on every host: remote members count)."""
    found: dict[int, set[netaddr.IPAddress]] = {}
    for inst in instances:
        for group in inst.security_groups:
            found.setdefault(group, set()).update(inst.addresses)
    return {group: frozenset(addrs) for group, addrs in found.items()}


@dataclasses.dataclass(frozen=True)
class HostFirewall:
    """What one host must filter: its instances, every group they use
    (directly or as a rule's source group), and each group's member
    addresses across all hosts (a missing group has no members).

    Raises InvalidInput for a duplicate instance id or address, or a
    group that is named but not given.
    """

    instances: tuple[FilteredInstance, ...]
    groups: tuple[SecurityGroup, ...] = ()
    members: Mapping[int, frozenset[netaddr.IPAddress]] = dataclasses.field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "instances", tuple(self.instances))
        object.__setattr__(self, "groups", tuple(self.groups))
        by_id = self.group_map()
        if len(by_id) != len(self.groups):
            raise exception.InvalidInput(reason="duplicate security group id")
        for group in self.groups:
            for rule in group.rules:
                if rule.source_group is not None:
                    self._known(
                        by_id, rule.source_group, f"group {group.name}"
                    )
        owner: dict[str, str] = {}
        ids: set[int] = set()
        for inst in self.instances:
            if inst.id in ids:
                raise exception.InvalidInput(
                    reason=f"instance id {inst.id} given twice"
                )
            ids.add(inst.id)
            for group_id in inst.security_groups:
                self._known(by_id, group_id, f"instance {inst.uuid}")
            for address in inst.address_text:
                if address in owner:
                    raise exception.InvalidInput(
                        reason=f"address {address} belongs to instances "
                        f"{owner[address]} and {inst.uuid}"
                    )
                owner[address] = inst.uuid

    @staticmethod
    def _known(
        by_id: Mapping[int, SecurityGroup], group: int, who: str
    ) -> None:
        if group not in by_id:
            raise exception.InvalidInput(
                reason=f"{who} names unknown security group {group}"
            )

    def group_map(self) -> dict[int, SecurityGroup]:
        """Groups by id."""
        return {group.id: group for group in self.groups}

    def members_of(self, group: int) -> frozenset[netaddr.IPAddress]:
        """The member addresses of ``group`` (empty if none)."""
        return self.members.get(group, frozenset())
