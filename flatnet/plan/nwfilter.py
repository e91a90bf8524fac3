"""libvirt nwfilters as data: nova's NWFilterFirewall set, and more.

PURE: no I/O, no libvirt; XML is built and parsed with xml.etree only,
never by formatting strings. A reconciler renders the full desired set
for the instances of a host with :func:`host_filters` (static filters
first, in dependency order, then one ``nova-instance-<name>-<mac>``
filter per NIC) and hands it to the executor (flatnet.linux.nwfilter),
which defines what differs and keeps each filter's UUID.

nova's set (nova.virt.libvirt.firewall.NWFilterFirewall, Pike):

* ``nova-no-nd-reflection`` (ipv6): drop IPv6 multicast that comes back
  to the guest with its own source MAC (duplicate address detection).
* ``nova-allow-dhcp-server`` (ipv4, L4): defined, referenced by nothing,
  as in nova.
* ``nova-base`` / ``nova-nodhcp`` (root): libvirt's ``no-mac-spoofing``,
  ``no-ip-spoofing``, ``no-arp-spoofing`` and ``nova-no-nd-reflection``;
  ``nova-base`` adds libvirt's ``allow-dhcp-server`` ($DHCPSERVER).
  ``nova-vpn`` (cloudpipe) went away in nova Pike and is not defined.

Beyond nova, both bases also reference (all ebtables rules, so they work
without br_netfilter):

* ``flatnet-no-dhcp-server`` (ipv4/ipv6): drop DHCP server replies the
  guest sends (udp source port 67, DHCPv6 547): a rogue server on a
  guest cannot answer its neighbours (CVE-2016-5362 is the neutron
  analogue).
* ``flatnet-no-ra`` (ipv6): drop router advertisements (ICMPv6 134) the
  guest sends.
* ``flatnet-only-ip-arp`` (root): drop every frame the guest sends whose
  ethertype is not ARP, IPv4 or IPv6 (802.1Q tags, RARP, ...), which
  would otherwise carry traffic past the IP and ARP checks.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence

import netaddr

from flatnet import exception

INSTANCE_PREFIX = "nova-instance-"
BASE = "nova-base"
NODHCP = "nova-nodhcp"
#: libvirt's own filters (libvirt-daemon-config-nwfilter) nova refers to
LIBVIRT_BUILTINS = (
    "no-mac-spoofing",
    "no-ip-spoofing",
    "no-arp-spoofing",
    "allow-dhcp-server",
)
ACTIONS = frozenset({"drop", "reject", "accept", "return", "continue"})
DIRECTIONS = frozenset({"in", "out", "inout"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
_PARAM_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

Pairs = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """``<rule action direction priority><protocol attrs/></rule>``;
    ``protocol`` None is a rule without a match element (all frames)."""

    action: str
    direction: str
    priority: int = 500
    protocol: str | None = None
    attrs: Pairs = ()

    def __post_init__(self) -> None:
        if self.action not in ACTIONS or self.direction not in DIRECTIONS:
            raise exception.InvalidInput(
                reason=f"nwfilter rule {self.action}/{self.direction}"
            )


@dataclasses.dataclass(frozen=True, slots=True)
class FilterRef:
    """``<filterref filter><parameter name value/>...</filterref>``; a
    name may repeat (a list, e.g. several IP values)."""

    filter: str
    parameters: Pairs = ()

    def __post_init__(self) -> None:
        validate_name(self.filter)
        for name, _ in self.parameters:
            if not _PARAM_RE.match(name):
                raise exception.InvalidInput(
                    reason=f"nwfilter parameter name {name!r}"
                )


@dataclasses.dataclass(frozen=True, slots=True)
class NWFilter:
    """One filter; ``entries`` keeps rules and filterrefs in order."""

    name: str
    chain: str = "root"
    entries: tuple[Rule | FilterRef, ...] = ()
    priority: int | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(
            e.filter for e in self.entries if isinstance(e, FilterRef)
        )

    def element(self, uuid: str | None = None) -> ET.Element:
        root = ET.Element("filter", name=self.name, chain=self.chain)
        if self.priority is not None:
            root.set("priority", str(self.priority))
        if uuid is not None:
            ET.SubElement(root, "uuid").text = uuid
        for entry in self.entries:
            root.append(_entry_element(entry))
        return root

    def xml(self, uuid: str | None = None) -> str:
        """The XML libvirt's nwfilterDefineXML takes."""
        return ET.tostring(self.element(uuid), encoding="unicode")


def _entry_element(entry: Rule | FilterRef) -> ET.Element:
    if isinstance(entry, FilterRef):
        ref = ET.Element("filterref", filter=entry.filter)
        for name, value in entry.parameters:
            ET.SubElement(ref, "parameter", name=name, value=value)
        return ref
    rule = ET.Element(
        "rule",
        action=entry.action,
        direction=entry.direction,
        priority=str(entry.priority),
    )
    if entry.protocol is not None:
        ET.SubElement(rule, entry.protocol, dict(entry.attrs))
    return rule


def validate_name(name: str) -> str:
    """A filter name libvirt stores as ``/etc/libvirt/nwfilter/<name>.xml``."""
    if not _NAME_RE.match(name):
        raise exception.InvalidInput(
            reason=f"nwfilter name {name!r}: want 1-200 of [A-Za-z0-9_.:-]"
        )
    return name


# --- nova's static filters and ours ---------------------------------------
def _drop_out(priority: int, element: str, **attrs: str) -> Rule:
    return Rule("drop", "out", priority, element, tuple(sorted(attrs.items())))


def static_filters(prefix: str = "") -> tuple[NWFilter, ...]:
    """Every filter except the per-instance ones, each after the filters
    it references (libvirt's built-ins exist already). ``prefix`` goes
    before every name but libvirt's (tests use it to stay apart)."""
    no_nd = NWFilter(
        f"{prefix}nova-no-nd-reflection",
        "ipv6",
        (
            Rule("drop", "in", 500, "mac", (
                ("dstmacaddr", "33:33:00:00:00:00"),
                ("dstmacmask", "ff:ff:00:00:00:00"),
                ("srcmacaddr", "$MAC"),
            )),
        ),
    )  # fmt: skip
    allow_dhcp = NWFilter(
        f"{prefix}nova-allow-dhcp-server",
        "ipv4",
        (
            Rule("accept", "out", 100, "udp", (
                ("srcipaddr", "0.0.0.0"),  # noqa: S104 (DHCP discover)
                ("dstipaddr", "255.255.255.255"),
                ("srcportstart", "68"), ("dstportstart", "67"),
            )),
            Rule("accept", "in", 100, "udp", (
                ("srcipaddr", "$DHCPSERVER"),
                ("srcportstart", "67"), ("dstportstart", "68"),
            )),
        ),
    )  # fmt: skip
    guards = guard_filters(prefix)
    common = (
        "no-mac-spoofing",
        "no-ip-spoofing",
        "no-arp-spoofing",
        no_nd.name,
        *(f.name for f in guards),  # (these carry the prefix already)
    )
    nodhcp = NWFilter(
        prefix + NODHCP, "root", tuple(FilterRef(n) for n in common)
    )
    base = NWFilter(
        prefix + BASE,
        "root",
        tuple(FilterRef(n) for n in (*common, "allow-dhcp-server")),
    )
    return (no_nd, allow_dhcp, *guards, nodhcp, base)


def guard_filters(prefix: str = "") -> tuple[NWFilter, ...]:
    """flatnet's additions to nova's bases (see the module docstring)."""
    no_dhcp_server = NWFilter(
        f"{prefix}flatnet-no-dhcp-server",
        "ipv4",
        (_drop_out(90, "ip", protocol="udp", srcportstart="67"),),
    )
    no_dhcp6_server = NWFilter(
        f"{prefix}flatnet-no-dhcp6-server",
        "ipv6",
        (_drop_out(90, "ipv6", protocol="udp", srcportstart="547"),),
    )
    no_ra = NWFilter(
        f"{prefix}flatnet-no-ra",
        "ipv6",
        (_drop_out(90, "ipv6", protocol="icmpv6", type="134"),),
    )
    allowed = tuple(
        Rule("accept", "out", 900, "mac", (("protocolid", proto),))
        for proto in ("arp", "ipv4", "ipv6")
    )
    only_ip_arp = NWFilter(
        f"{prefix}flatnet-only-ip-arp",
        "root",
        (*allowed, Rule("drop", "out", 1000)),
    )
    return (no_dhcp_server, no_dhcp6_server, no_ra, only_ip_arp)


# --- per-instance filters ---------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class NicFilterSpec:
    """What the instance filter of one NIC needs (plain data)."""

    instance_name: str
    mac: netaddr.EUI
    ips: tuple[netaddr.IPAddress, ...]
    dhcp_server: netaddr.IPAddress | None = None
    project_net: netaddr.IPNetwork | None = None

    def __post_init__(self) -> None:
        validate_name(self.instance_name)
        for ip in self.ips:
            if ip.version != 4:
                raise exception.InvalidIpAddress(
                    address=str(ip), reason="instance filters carry IPv4"
                )


def instance_filter_name(
    instance_name: str, mac: netaddr.EUI, prefix: str = ""
) -> str:
    """``nova-instance-<name>-<mac without colons>`` (nova's
    ``_instance_filter_name``), e.g. nova-instance-vm1-fa163e112233."""
    plain = str(netaddr.EUI(mac, dialect=netaddr.mac_bare)).lower()
    return validate_name(f"{prefix}{INSTANCE_PREFIX}{instance_name}-{plain}")


def instance_parameters(spec: NicFilterSpec) -> Pairs:
    """nova's order: one IP per fixed IP, DHCPSERVER, PROJNET, PROJMASK."""
    params: list[tuple[str, str]] = [("IP", str(ip)) for ip in spec.ips]
    if spec.dhcp_server is not None:
        params.append(("DHCPSERVER", str(spec.dhcp_server)))
    if spec.project_net is not None:
        params.append(("PROJNET", str(spec.project_net.network)))
        params.append(("PROJMASK", str(spec.project_net.netmask)))
    return tuple(params)


def instance_filter(spec: NicFilterSpec, prefix: str = "") -> NWFilter:
    """The NIC's filter: ``nova-base`` when a DHCP server is known, else
    ``nova-nodhcp`` (nova's base filter choice), with its parameters."""
    if not spec.ips:
        # no IP = libvirt would learn one from the guest's traffic
        raise exception.InvalidInput(
            reason=f"{spec.instance_name}: an instance filter needs an IP"
        )
    base = BASE if spec.dhcp_server is not None else NODHCP
    return NWFilter(
        instance_filter_name(spec.instance_name, spec.mac, prefix),
        "root",
        (FilterRef(prefix + base, instance_parameters(spec)),),
    )


def host_filters(
    specs: Iterable[NicFilterSpec], prefix: str = ""
) -> tuple[NWFilter, ...]:
    """The full desired set for a host: static filters, then instance
    filters sorted by name. Two NICs with one filter name must agree."""
    found: dict[str, NWFilter] = {}
    for spec in specs:
        flt = instance_filter(spec, prefix)
        if found.setdefault(flt.name, flt) != flt:
            raise exception.InvalidInput(
                reason=f"two different filters named {flt.name}"
            )
    return (*static_filters(prefix), *(found[n] for n in sorted(found)))


def filterref_element(name: str, parameters: Pairs = ()) -> ET.Element:
    """``<filterref filter=name>`` for a domain's ``<interface>`` (nova
    puts no parameters there: the instance filter carries them)."""
    return _entry_element(FilterRef(validate_name(name), parameters))


# --- reading what libvirt returns -------------------------------------------
def parse(xml_text: str) -> tuple[NWFilter, str | None]:
    """A filter and its UUID from libvirt's XMLDesc (or our own XML).
    Raises InvalidInput for XML that is not an nwfilter."""
    try:
        root = ET.fromstring(xml_text)  # noqa: S314 (libvirt's own output)
    except ET.ParseError as exc:
        raise exception.InvalidInput(reason=f"nwfilter XML: {exc}") from exc
    if root.tag != "filter" or "name" not in root.attrib:
        raise exception.InvalidInput(reason="not a <filter name=...>")
    entries: list[Rule | FilterRef] = []
    uuid = None
    for child in root:
        if child.tag == "uuid":
            uuid = (child.text or "").strip()
        elif child.tag == "filterref":
            entries.append(_parse_ref(child))
        elif child.tag == "rule":
            entries.append(_parse_rule(child))
    priority = root.get("priority")
    flt = NWFilter(
        root.attrib["name"],
        root.get("chain", "root"),
        tuple(entries),
        None if priority is None else int(priority),
    )
    return flt, uuid


def _parse_ref(elem: ET.Element) -> FilterRef:
    params = tuple(
        (p.get("name", ""), p.get("value", ""))
        for p in elem
        if p.tag == "parameter"
    )
    return FilterRef(elem.get("filter", ""), params)


def _parse_rule(elem: ET.Element) -> Rule:
    match = next(iter(elem), None)
    return Rule(
        elem.get("action", ""),
        elem.get("direction", ""),
        int(elem.get("priority", "500")),
        None if match is None else match.tag,
        () if match is None else tuple(sorted(match.attrib.items())),
    )


def canonical(flt: NWFilter) -> NWFilter:
    """``flt`` as libvirt stores it: a rule's match attributes and a
    filterref's parameters sorted by name (a list keeps its order)."""

    def entry(e: Rule | FilterRef) -> Rule | FilterRef:
        if isinstance(e, FilterRef):
            params = sorted(e.parameters, key=lambda kv: kv[0])
            return dataclasses.replace(e, parameters=tuple(params))
        return dataclasses.replace(e, attrs=tuple(sorted(e.attrs)))

    return dataclasses.replace(flt, entries=tuple(map(entry, flt.entries)))


def same(live: NWFilter, desired: NWFilter) -> bool:
    """True when ``live`` (parsed from libvirt) is ``desired``; the chain
    priority libvirt fills in by default is ignored unless we set one."""
    if desired.priority is None:
        live = dataclasses.replace(live, priority=None)
    return canonical(live) == canonical(desired)


def undefined_refs(
    filters: Sequence[NWFilter], defined: Iterable[str]
) -> list[tuple[str, str]]:
    """(filter, missing ref) pairs: references to filters that are
    neither defined nor earlier in ``filters`` (fail closed on them)."""
    known = set(defined)
    missing = []
    for flt in filters:
        missing += [(flt.name, ref) for ref in flt.refs if ref not in known]
        known.add(flt.name)
    return missing
