"""Connection-tracking entries, deleted with ``conntrack -D``.

nova's ``remove_floating_ip`` ran ``conntrack -D -r <fixed>`` so that a
floating IP's NATed flows stop at once; the compute firewall needs the
same cut when a rule or a group member that allowed a flow goes away
(Neutron bugs 1335375 and 1580377): an established flow is otherwise
accepted by the RELATED,ESTABLISHED rule forever. :class:`FlowFilter` is
the validated selection, :func:`delete_argv` its conntrack(8) argv.

Many cuts at once (:meth:`Conntrack.delete_many`) cost one
``conntrack -L`` and, only when some entries match, one
``conntrack -R -`` deleting exactly those entries: a ``conntrack -D``
per filter costs a process and a table walk each (~10 ms here), so 200
cuts that find nothing took seconds. The match happens in Python on
the listed original and reply tuples (:func:`parse_entries`,
:func:`match_entries`). A flow that starts between the list and the
delete is not cut: the callers apply the new rules first, so such a
flow was admitted by them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence

import netaddr

from flatnet import exception

TIMEOUT = 30.0
#: conntrack exits 1 when no entry matched: nothing to delete.
CONNTRACK_NOTHING_DELETED = 1
PROTOCOLS = ("tcp", "udp", "icmp", "sctp", "udplite", "dccp")
#: up to this many filters, one ``conntrack -D`` each (the kernel filters
#: the table); more, one ``conntrack -L`` matched in Python: listing a
#: table of 100,000 entries costs more than a few processes
FEW_FLOWS = 4
_DELETED_RE = re.compile(r"(\d+) flow entries have been deleted")


@dataclasses.dataclass(frozen=True, slots=True)
class FlowFilter:
    """Which entries to delete; every field given must match.

    ``orig_*`` is the original direction (``-s``/``-d``), ``reply_*``
    the reply direction (``-r``/``-q``); ``dport`` needs ``protocol``.
    Raises InvalidInput for a bad address, protocol or port, or an
    empty filter (which would delete every entry).
    """

    orig_src: netaddr.IPAddress | netaddr.IPNetwork | None = None
    orig_dst: netaddr.IPAddress | None = None
    reply_src: netaddr.IPAddress | None = None
    reply_dst: netaddr.IPAddress | None = None
    protocol: str | None = None
    dport: int | None = None
    zone: int | None = None

    def __post_init__(self) -> None:
        addresses = (self.orig_src, self.orig_dst, self.reply_src)
        if not any((*addresses, self.reply_dst)):
            raise exception.InvalidInput(reason="conntrack filter: no address")
        for name in ("orig_src", "orig_dst", "reply_src", "reply_dst"):
            value = getattr(self, name)
            if name == "orig_src" and "/" in str(value):
                # a source network (conntrack(8): CIDR implies --mask-src)
                net = netaddr.IPNetwork(str(value)).cidr
                object.__setattr__(self, name, net)
            elif value is not None:
                object.__setattr__(self, name, netaddr.IPAddress(str(value)))
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise exception.InvalidInput(
                reason=f"conntrack filter: protocol {self.protocol!r}"
            )
        if self.dport is not None and (
            self.protocol is None or not 0 < self.dport < 65536
        ):
            raise exception.InvalidInput(
                reason=f"conntrack filter: port {self.dport!r}"
            )
        if self.zone is not None and not 0 <= self.zone < 65536:
            raise exception.InvalidInput(reason="conntrack filter: zone")


def delete_argv(flow: FlowFilter) -> list[str]:
    """``conntrack -D`` with the filter's options (conntrack(8))."""
    argv = ["conntrack", "-D"]
    for flag, value in (
        ("-s", flow.orig_src),
        ("-d", flow.orig_dst),
        ("-r", flow.reply_src),
        ("-q", flow.reply_dst),
        ("-p", flow.protocol),
        ("--dport", flow.dport),
        ("-w", flow.zone),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One listed conntrack entry: its original and reply addresses as
    integers, protocol name, ports (None without), zone (0: none)."""

    protocol: str
    src: int
    dst: int
    reply_src: int
    reply_dst: int
    sport: int | None = None
    dport: int | None = None
    zone: int = 0

    def delete_line(self) -> str:
        """The ``conntrack -R`` line deleting exactly this entry."""
        parts = ["-D", "-s", _ip(self.src), "-d", _ip(self.dst)]
        parts += ["-p", self.protocol]
        if self.sport is not None and self.dport is not None:
            parts += ["--sport", str(self.sport), "--dport", str(self.dport)]
        if self.zone:
            parts += ["-w", str(self.zone)]
        return " ".join(parts)


def _ip(value: int) -> str:
    return str(netaddr.IPAddress(value, 4))


def _entry(line: str) -> Entry | None:
    """One ``conntrack -L`` line (default format), None if not IPv4
    TCP/UDP/ICMP-like (no two src=/dst= pairs)."""
    words = line.split()
    if not words or words[0] not in PROTOCOLS:
        return None
    found: dict[str, list[str]] = {}
    for word in words[3:]:
        key, sep, value = word.partition("=")
        if sep:
            found.setdefault(key, []).append(value)
    src, dst = found.get("src", []), found.get("dst", [])
    if len(src) < 2 or len(dst) < 2:  # noqa: PLR2004 - orig and reply
        return None
    try:
        addresses = [int(netaddr.IPAddress(a, 4)) for a in (*src, *dst)]
    except (netaddr.AddrFormatError, ValueError):
        return None
    sport, dport = found.get("sport"), found.get("dport")
    return Entry(
        words[0], addresses[0], addresses[2], addresses[1], addresses[3],
        int(sport[0]) if sport else None, int(dport[0]) if dport else None,
        int(found.get("zone", ["0"])[0]),
    )  # fmt: skip


def parse_entries(text: str) -> list[Entry]:
    """The entries of ``conntrack -L`` output (other lines skipped)."""
    return [e for e in map(_entry, text.splitlines()) if e is not None]


def _matches(flow: FlowFilter, entry: Entry) -> bool:
    src = flow.orig_src
    if src is not None:
        if isinstance(src, netaddr.IPNetwork):
            if not src.first <= entry.src <= src.last:
                return False
        elif int(src) != entry.src:
            return False
    checks = (
        (flow.orig_dst, entry.dst),
        (flow.reply_src, entry.reply_src),
        (flow.reply_dst, entry.reply_dst),
    )
    if any(want is not None and int(want) != have for want, have in checks):
        return False
    if flow.protocol is not None and flow.protocol != entry.protocol:
        return False
    if flow.dport is not None and flow.dport != entry.dport:
        return False
    return flow.zone is None or flow.zone == entry.zone


def _index_key(flow: FlowFilter) -> tuple[str, int] | None:
    if flow.orig_dst is not None:
        return ("dst", int(flow.orig_dst))
    if isinstance(flow.orig_src, netaddr.IPAddress):
        return ("src", int(flow.orig_src))
    return None


def match_entries(
    flows: Iterable[FlowFilter], entries: Iterable[Entry]
) -> list[Entry]:
    """The entries that at least one of ``flows`` selects (flows are
    indexed by destination or single source address, so a big table
    against many cuts stays linear)."""
    indexed: dict[tuple[str, int], list[FlowFilter]] = {}
    other: list[FlowFilter] = []
    for flow in flows:
        key = _index_key(flow)
        if key is None:
            other.append(flow)
        else:
            indexed.setdefault(key, []).append(flow)
    found = []
    for entry in entries:
        candidates = [
            *indexed.get(("dst", entry.dst), ()),
            *indexed.get(("src", entry.src), ()),
            *other,
        ]
        if any(_matches(flow, entry) for flow in candidates):
            found.append(entry)
    return found


def _command(argv: Sequence[str], netns: str | None) -> list[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return [*prefix, *argv]


@contextlib.contextmanager
def _conntrack_errors(what: str) -> Iterator[None]:
    """The one place a failed conntrack becomes HostNetworkError."""
    try:
        yield
    except subprocess.CalledProcessError as exc:
        raise exception.HostNetworkError(
            reason=f"conntrack -D {what}: "
            f"{' '.join((exc.stderr or '').split())}"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise exception.HostNetworkError(
            reason=f"conntrack -D {what}: {exc}"
        ) from exc


class Conntrack:
    """Delete conntrack entries (in ``netns`` if given)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def __repr__(self) -> str:
        return f"Conntrack(netns={self.netns!r})"

    def delete(self, flow: FlowFilter) -> int:
        """Delete the entries ``flow`` selects; returns how many (none is
        fine: conntrack's exit 1). Raises HostNetworkError."""
        argv = delete_argv(flow)
        with _conntrack_errors(" ".join(argv[2:])):
            out = subprocess.run(
                _command(argv, self.netns),
                check=False,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            found = _DELETED_RE.search(out.stderr)
            nothing = out.returncode == CONNTRACK_NOTHING_DELETED and found
            if out.returncode != 0 and not nothing:
                out.check_returncode()
        return int(found.group(1)) if found else 0

    def _run(self, argv: list[str], stdin: str | None = None) -> str:
        with _conntrack_errors(" ".join(argv[1:])):
            return subprocess.run(
                _command(argv, self.netns),
                input=stdin,
                check=True,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            ).stdout

    def list(self) -> list[Entry]:
        """Every IPv4 entry (one ``conntrack -L``). Raises
        HostNetworkError."""
        return parse_entries(self._run(["conntrack", "-L"]))

    def delete_many(self, flows: Sequence[FlowFilter]) -> int:
        """Delete every entry any of ``flows`` selects: for more than
        FEW_FLOWS, one list, then one ``conntrack -R -`` with an exact
        delete per matched entry (none when nothing matched). Returns
        how many matched; an entry that ended in between is not an
        error. Raises HostNetworkError (conntrack missing or failing)."""
        if len(flows) <= FEW_FLOWS:  # cheaper than listing a big table
            return sum(self.delete(flow) for flow in flows)
        return self.delete_entries(match_entries(flows, self.list()))

    def delete_entries(self, entries: Sequence[Entry]) -> int:
        """Delete exactly ``entries`` (as listed), one ``conntrack -R -``
        (none for no entries); returns how many were asked. Raises
        HostNetworkError."""
        if entries:
            lines = "".join(f"{e.delete_line()}\n" for e in entries)
            self._run(["conntrack", "-R", "-"], lines)
        return len(entries)

    def forget_connections(self, fixed: netaddr.IPAddress) -> int:
        """nova's ``conntrack -D -r <fixed>``: drop the NATed flows of a
        floating IP association that went away."""
        return self.delete(FlowFilter(reply_src=fixed))
