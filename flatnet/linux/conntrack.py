"""Connection-tracking entries, deleted with ``conntrack -D``.

nova's ``remove_floating_ip`` ran ``conntrack -D -r <fixed>`` so that a
floating IP's NATed flows stop at once; the compute firewall needs the
same cut when a rule or a group member that allowed a flow goes away
(Neutron bugs 1335375 and 1580377): an established flow is otherwise
accepted by the RELATED,ESTABLISHED rule forever. :class:`FlowFilter` is
the validated selection, :func:`delete_argv` its conntrack(8) argv.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import subprocess
from collections.abc import Iterator, Sequence

import netaddr

from flatnet import exception

TIMEOUT = 30.0
#: conntrack exits 1 when no entry matched: nothing to delete.
CONNTRACK_NOTHING_DELETED = 1
PROTOCOLS = ("tcp", "udp", "icmp", "sctp", "udplite", "dccp")
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

    def forget_connections(self, fixed: netaddr.IPAddress) -> int:
        """nova's ``conntrack -D -r <fixed>``: drop the NATed flows of a
        floating IP association that went away."""
        return self.delete(FlowFilter(reply_src=fixed))
