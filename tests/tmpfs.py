"""A small tmpfs for disk-full tests (root only)."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
from collections.abc import Iterator


@contextlib.contextmanager
def mounted(path: pathlib.Path, size: str) -> Iterator[pathlib.Path]:
    """A tmpfs of ``size`` (mount(8) syntax: "8k", "1m") on ``path``
    (created), unmounted after."""
    path.mkdir(exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
