"""flatnet-network that SIGKILLs itself at a chosen step (tests only).

``python -m tests.functional.fault_daemon --config-file F`` runs
:func:`flatnet.cmd.network.main` unchanged, after wrapping one executor
function so that the process kills itself (``kill -9``: no cleanup, no
``finally``) at the step named by ``FLATNET_FAULT``, once the file named
by ``FLATNET_FAULT_ARM`` exists (the test creates it right before the
operation it wants to interrupt; the launcher removes it when it fires).
Production code has no test switch: the fault lives only here.

Steps:

* ``removed-written``: after the write that takes a host out of dnsmasq's
  files (a ``nova-*.conf`` replaced, or a ``nova-*.d/`` batch deleted);
* ``before-hup`` / ``after-hup``: around the SIGHUP of dnsmasq;
* ``temp-written``: inside an atomic file write, after the temporary
  file is written and before it is renamed (leaks the temp file);
* ``snapshot-written``: after the ``init`` snapshot is written, before
  dnsmasq is started.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from flatnet.cmd import network
from flatnet.linux import dnsmasq, files

STEP = os.environ.get("FLATNET_FAULT", "")
ARM = os.environ.get("FLATNET_FAULT_ARM", "")


def _fire(step: str) -> None:
    if step != STEP or not ARM or not os.path.exists(ARM):
        return
    os.unlink(ARM)
    sys.stderr.write(f"fault_daemon: SIGKILL at {step}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _after(step: str, test: Callable[..., bool], func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if test(*args, **kwargs):
            _fire(step)
        return result

    return wrapper


def _is_hosts_write(path: str, *_args: Any, **_kwargs: Any) -> bool:
    name = os.path.basename(path)
    parent = os.path.basename(os.path.dirname(path))
    return (name.startswith("nova-") and name.endswith(".conf")) or (
        parent.startswith("nova-") and parent.endswith(".d")
    )


def _is_snapshot(path: str, *_args: Any, **_kwargs: Any) -> bool:
    return path.endswith(".init")


def _install() -> None:
    files.replace_file = _after(  # type: ignore[assignment]
        "removed-written", _is_hosts_write, files.replace_file
    )
    files.delete_file = _after(  # type: ignore[assignment]
        "removed-written", _is_hosts_write, files.delete_file
    )
    snapshot = files.replace_file
    files.replace_file = _after(  # type: ignore[assignment]
        "snapshot-written", _is_snapshot, snapshot
    )
    reload = dnsmasq.DnsmasqProcess.reload

    def reload_with_faults(self: Any, pid: int) -> None:
        _fire("before-hup")
        reload(self, pid)
        _fire("after-hup")

    dnsmasq.DnsmasqProcess.reload = reload_with_faults  # type: ignore[method-assign]
    rename = os.rename

    def rename_with_fault(src: Any, dst: Any, **kwargs: Any) -> None:
        if os.path.basename(str(src)).startswith(".nova-"):
            _fire("temp-written")
        rename(src, dst, **kwargs)

    os.rename = rename_with_fault  # type: ignore[assignment]


if __name__ == "__main__":
    _install()
    sys.exit(network.main(sys.argv[1:]))
