"""Network namespaces for functional tests (created and removed by tests).

Every name starts with ``fnt`` plus the pid, so parallel runs never clash
and a leftover is easy to spot. Nothing here touches the root namespace
except creating veth pairs whose both ends are moved into test namespaces.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence

_counter = itertools.count()


def unique_name(kind: str) -> str:
    """A short unique name (<= 15 chars, IFNAMSIZ) for a netns or link."""
    return f"fnt{kind}{os.getpid() % 100000}{next(_counter)}"[:15]


def run(
    argv: Sequence[str],
    netns: str | None = None,
    check: bool = True,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run argv (inside ``netns`` if given) and return its output."""
    full = list(argv)
    if netns is not None:
        full = ["ip", "netns", "exec", netns, *full]
    return subprocess.run(
        full, check=check, capture_output=True, text=True, timeout=timeout
    )


def popen(
    argv: Sequence[str], netns: str | None = None, **kwargs: object
) -> subprocess.Popen[str]:
    full = list(argv)
    if netns is not None:
        full = ["ip", "netns", "exec", netns, *full]
    return subprocess.Popen(full, text=True, **kwargs)  # type: ignore[call-overload]


def create(name: str) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "link", "set", "lo", "up"], netns=name)


def kill_all(name: str) -> None:
    """SIGKILL every process that lives in namespace ``name``."""
    out = run(["ip", "netns", "pids", name], check=False).stdout
    for pid in out.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def delete(name: str) -> None:
    kill_all(name)
    run(["ip", "netns", "delete", name], check=False)


@contextlib.contextmanager
def namespace(kind: str = "ns") -> Iterator[str]:
    """Create a fresh namespace with lo up; kill its processes and delete
    it afterwards."""
    name = unique_name(kind)
    create(name)
    try:
        yield name
    finally:
        delete(name)


def veth(
    ns_a: str, name_a: str, ns_b: str, name_b: str, mac_b: str | None = None
) -> None:
    """A veth pair with one end in each namespace (created inside ns_a)."""
    run(
        [
            "ip",
            "link",
            "add",
            name_a,
            "type",
            "veth",
            "peer",
            "name",
            name_b,
            "netns",
            ns_b,
        ],
        netns=ns_a,
    )
    if mac_b is not None:
        run(["ip", "link", "set", name_b, "address", mac_b], netns=ns_b)
    run(["ip", "link", "set", name_a, "up"], netns=ns_a)
    run(["ip", "link", "set", name_b, "up"], netns=ns_b)
