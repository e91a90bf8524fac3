"""Lease journal on a full filesystem: events written, lost, torn (root).

Mounts a tiny tmpfs (``--size``, default 64k) on a fresh directory,
renders the real sh hook, fills the filesystem, then runs ``--events``
``add`` events through the hook, once without and once with a journal
reserve (fallocate ``FALLOC_FL_KEEP_SIZE``, ``--reserve`` bytes). Prints,
per run: records written, records lost (the hook's loss counter), torn
records the reader marked, and the hook's cost per event. The tmpfs is
unmounted and the directory removed afterwards.

    .venv/bin/python bench/journal_full.py [--size 64k] [--events 600]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from flatnet.linux import journal  # noqa: E402
from flatnet.plan import dhcp_hook  # noqa: E402


def _fill(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (b"x" * 4096, b"x"):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, chunk)
    finally:
        os.close(fd)


def _run(base: pathlib.Path, events: int, reserve: int) -> str:
    hook = base / "flatnet-dhcp-script"
    journal_path = base / "nova-br100.events"
    for name in ("filler", journal_path.name, "nova-br100.lost"):
        with contextlib.suppress(FileNotFoundError):
            (base / name).unlink()
    journal.ensure_loss_file(journal.loss_path(str(journal_path)))
    if reserve:
        journal.reserve(str(journal_path), reserve)
    _fill(base / "filler")
    env = {"FLATNET_EVENTS": str(journal_path), "PATH": "/usr/bin:/bin"}
    started = time.monotonic()
    for n in range(events):
        mac = f"fa:16:3e:00:{n >> 8:02x}:{n & 0xFF:02x}"
        subprocess.run(
            [str(hook), "add", mac, f"10.0.{n >> 8}.{n & 0xFF}"],
            env=env,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    per_event = (time.monotonic() - started) / events * 1000
    (base / "filler").unlink()
    journal.append_line(str(journal_path), "add fa:16:3e:ff:ff:ff 10.0.255.1")
    chunk = journal.read_chunk(str(journal_path), 0)
    lines = chunk.lines if chunk else ()
    torn = sum(1 for line in lines if line.startswith(journal.TORN))
    written = len(lines) - torn - 1
    lost = journal.read_losses(journal.loss_path(str(journal_path))).lost
    return (
        f"reserve {reserve:>7} B: {written:4d} written, {lost:4d} lost "
        f"(counted), {torn} torn (marked); {per_event:.2f} ms/event"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="64k")
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--reserve", type=int, default=16384)
    args = parser.parse_args()
    base = pathlib.Path(tempfile.mkdtemp(prefix="fntjournal"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={args.size}", "fnt", base],
        check=True,
    )
    try:
        hook = base / "flatnet-dhcp-script"
        hook.write_text(dhcp_hook.hook_script("/bin/false"))
        hook.chmod(0o700)
        print(f"tmpfs {args.size}, filled, {args.events} add events:")
        for reserve in (0, args.reserve):
            print(" ", _run(base, args.events, reserve))
    finally:
        subprocess.run(["umount", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
