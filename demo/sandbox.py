"""Network namespaces for the demo: a cloud on one host, in a sandbox.

Every namespace is ``fnd<pid>-<role>`` (the demo's pid), removed at
exit; a run killed with SIGKILL is swept by the next one.
Layout of the namespace form (the VM form: demo/vm_form.py)::

    [outside] eth0 172.24.4.254/24 --- eth1 [nethost] br100 10.0.0.1/24
                                                     |   |   |
                       eth2 (flat_interface) --[lan] tap1 tap2 tap3
                                                     |   |   |
                                              [vm1] [vm2] [vm3] eth0
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
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


def sweep_dead_runs(tmp: pathlib.Path | None = None) -> list[str]:
    """Remove what a demo killed with SIGKILL left: namespaces
    ``fnd<pid>-*`` and folders ``flatnet-demo-<pid>-*`` of dead pids
    (the VM harness sweeps its domains, bridges and guard rules)."""
    tmp = tmp or pathlib.Path(tempfile.gettempdir())
    removed = []
    for name in sh(["ip", "netns", "list"]).split():
        found = re.match(r"fnd(\d+)-", name)
        if found and not pathlib.Path(f"/proc/{found[1]}").exists():
            _delete_netns(name)
            removed.append(name)
    for folder in tmp.glob("flatnet-demo-*-*"):
        found = re.match(r"flatnet-demo-(\d+)-", folder.name)
        if found and not pathlib.Path(f"/proc/{found[1]}").exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def _delete_netns(name: str) -> None:
    """Kill every process in namespace ``name``, then delete it."""
    for pid in sh(["ip", "netns", "pids", name], check=False).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    sh(["ip", "netns", "delete", name], check=False)


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
            _delete_netns(name)
        self.namespaces.clear()
