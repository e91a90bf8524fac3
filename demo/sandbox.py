"""Network namespaces for the demo: a cloud on one host, in a sandbox.

Layout (every name carries the demo's short id, everything is removed at
exit; nothing in the root namespace is touched)::

    [outside] eth0 172.24.4.254/24 --- eth1 [nethost] br100 10.0.0.1/24
                                                     |   |   |
                       eth2 (flat_interface) --[lan] tap1 tap2 tap3
                                                     |   |   |
                                              [vm1] [vm2] [vm3] eth0
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence


def sh(
    argv: Sequence[str],
    netns: str | None = None,
    check: bool = True,
    timeout: float = 60.0,
    stdin: str | None = None,
) -> str:
    """Run a command (in ``netns`` if given, fed ``stdin``); return
    stdout."""
    full = list(argv)
    if netns is not None:
        full = ["ip", "netns", "exec", netns, *full]
    done = subprocess.run(
        full, capture_output=True, text=True, timeout=timeout, check=False,
        input=stdin,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(full)} failed ({done.returncode}): "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


class Sandbox:
    """Creates namespaces and links; removes all of them on close()."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.namespaces: list[str] = []

    def ns(self, role: str) -> str:
        name = f"fn{self.tag}-{role}"
        sh(["ip", "netns", "add", name])
        sh(["ip", "link", "set", "lo", "up"], netns=name)
        self.namespaces.append(name)
        return name

    def veth(
        self,
        ns_a: str,
        dev_a: str,
        ns_b: str,
        dev_b: str,
        mac_b: str | None = None,
    ) -> None:
        sh(
            [
                "ip",
                "link",
                "add",
                dev_a,
                "type",
                "veth",
                "peer",
                "name",
                dev_b,
                "netns",
                ns_b,
            ],
            netns=ns_a,
        )
        if mac_b:
            sh(["ip", "link", "set", dev_b, "address", mac_b], netns=ns_b)
        sh(["ip", "link", "set", dev_a, "up"], netns=ns_a)
        sh(["ip", "link", "set", dev_b, "up"], netns=ns_b)

    def close(self) -> None:
        for name in reversed(self.namespaces):
            pids = sh(["ip", "netns", "pids", name], check=False).split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            sh(["ip", "netns", "delete", name], check=False)
        self.namespaces.clear()
