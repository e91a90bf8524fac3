"""EXECUTOR (read-only): which processes have a file open (/proc).

Used to say who holds a locked SQLite database. Reading another user's
``/proc/<pid>/fd`` needs root (or the same user); processes that cannot
be inspected are skipped, so the answer is "who is known", never an
error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

PROC = "/proc"


def _command(pid: str, proc: str) -> str:
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            raw = f.read(4096)
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    text = " ".join(words) or "?"
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean[:120]


def _opens(pid: str, wanted: set[str], proc: str) -> bool:
    fd_dir = f"{proc}/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"{fd_dir}/{fd}") in wanted:
                return True
    return False


def open_by(paths: Sequence[str], proc: str = PROC) -> list[tuple[int, str]]:
    """(pid, command line) of every other process that has one of
    ``paths`` open, by pid."""
    wanted = {os.path.abspath(p) for p in paths}
    me = str(os.getpid())
    try:
        pids = sorted((p for p in os.listdir(proc) if p.isdigit()), key=int)
    except OSError:
        return []
    return [
        (int(pid), _command(pid, proc))
        for pid in pids
        if pid != me and _opens(pid, wanted, proc)
    ]
