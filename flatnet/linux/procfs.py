"""EXECUTOR (read only): what ``/proc`` tells about one process.

Nothing here signals or changes anything. It answers the questions
:mod:`flatnet.linux.dnsmasq` needs to decide whether a process is a
dnsmasq that only a privileged user can have started (proc(5)):

* its command line and environment;
* its identity: start time (``/proc/<pid>/stat`` field 22, so a recycled
  pid is never taken for the old process), real uid, executable;
* whether it lives in our network and user namespaces;
* which UDP ports it holds through sockets CREATED BY ROOT
  (``/proc/<pid>/net/udp``: the ``uid`` column is the uid that created the
  socket, the ``inode`` column matches ``/proc/<pid>/fd`` links).
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Sequence

ROOT_UID = 0


def _read_nul_list(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]


def process_cmdline(pid: int, proc: str = "/proc") -> list[str] | None:
    """argv of ``pid`` (None if gone, empty for a zombie)."""
    return _read_nul_list(f"{proc}/{pid}/cmdline")


def process_environ(pid: int, proc: str = "/proc") -> dict[str, str]:
    """Environment of ``pid`` ({} if unreadable)."""
    items = _read_nul_list(f"{proc}/{pid}/environ") or []
    return dict(item.split("=", 1) for item in items if "=" in item)


def split_env(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``env K=V ... cmd args`` -> ({K: V}, [cmd, args])."""
    args = list(argv)
    env: dict[str, str] = {}
    if args and args[0] == "env":
        args.pop(0)
        while args and "=" in args[0] and not args[0].startswith("-"):
            key, value = args.pop(0).split("=", 1)
            env[key] = value
    return env, args


def start_time(pid: int, proc: str = "/proc") -> int | None:
    """Start time of ``pid`` in clock ticks since boot; None if it is
    gone or a zombie (dead, not yet reaped).

    The command name (field 2) may hold blanks and parentheses: the
    fields are counted after its LAST ``)``.
    """
    try:
        with open(f"{proc}/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    try:
        return int(fields[19])  # field 22; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def socket_inodes(pid: int, proc: str = "/proc") -> set[int]:
    """Inodes of the sockets ``pid`` holds (empty if unreadable)."""
    try:
        names = os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return set()
    found: set[int] = set()
    for name in names:
        try:
            link = os.readlink(f"{proc}/{pid}/fd/{name}")
        except OSError:
            continue
        if link.startswith("socket:[") and link.endswith("]"):
            found.add(int(link[8:-1]))
    return found


def root_udp_ports(pid: int, proc: str = "/proc") -> frozenset[int]:
    """Local UDP (IPv4) ports of sockets held by ``pid`` and created by
    uid 0, read from the table of ``pid``'s own network namespace."""
    inodes = socket_inodes(pid, proc)
    if not inodes:
        return frozenset()
    try:
        with open(f"{proc}/{pid}/net/udp", encoding="ascii") as handle:
            rows = handle.read().splitlines()[1:]
    except OSError:
        return frozenset()
    ports: set[int] = set()
    for row in rows:
        cols = row.split()
        # sl local rem st queues tr retrnsmt uid timeout inode ...
        if len(cols) < 10 or not cols[9].isdigit():
            continue
        if int(cols[9]) in inodes and cols[7] == str(ROOT_UID):
            ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return frozenset(ports)


def _ns_inode(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def same_namespaces(
    pid: int, proc: str = "/proc", netns_path: str | None = None
) -> bool:
    """True if ``pid`` shares our user namespace and our network
    namespace, or the one bound at ``netns_path`` when given (a DHCP
    shard in a namespace of its own, ``/run/netns/<name>``).

    An unprivileged user may own a user namespace (and so a network
    namespace) of its own, where it may bind any port; a named
    namespace under /run/netns can only be bound by root (mount(2)).
    """
    wanted = {
        "net": netns_path or "/proc/self/ns/net",
        "user": "/proc/self/ns/user",
    }
    for kind, ours in wanted.items():
        theirs = _ns_inode(f"{proc}/{pid}/ns/{kind}")
        if theirs is None or theirs != _ns_inode(ours):
            return False
    return True


def real_uid(pid: int, proc: str = "/proc") -> int | None:
    """Real uid of ``pid`` from its status file (None if gone)."""
    try:
        with open(f"{proc}/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Executable:
    """The program a process runs."""

    path: str  # readlink of /proc/<pid>/exe, " (deleted)" kept
    root_owned: bool  # owned by root, not writable by group or others


def executable(pid: int, proc: str = "/proc") -> Executable:
    """What ``pid`` runs; stat() of the exe link reaches the inode even
    after the file was replaced (a package upgrade)."""
    link = f"{proc}/{pid}/exe"
    try:
        path = os.readlink(link)
        info = os.stat(link)
    except OSError:
        return Executable(path="?", root_owned=False)
    writable = stat.S_IWGRP | stat.S_IWOTH
    owned = info.st_uid == ROOT_UID and not info.st_mode & writable
    return Executable(path=path, root_owned=owned)
