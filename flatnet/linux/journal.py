"""EXECUTOR: an append-only event journal (append, read from an offset).

Writers (the dnsmasq hooks) append whole lines with one O_APPEND write;
the reader returns only complete lines after a known ``(inode, offset)``
and the offset just past them, so a torn tail is read again next time.
Rotation renames the journal to ``<path>.old`` (a writer that opened it
just before the rename finishes into the old inode, drained later).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

LOG = logging.getLogger(__name__)

OLD_SUFFIX = ".old"
MAX_LINE = 512


@dataclasses.dataclass(frozen=True, slots=True)
class JournalChunk:
    """Complete lines of one journal inode between two offsets."""

    inode: int
    start: int
    end: int
    size: int
    lines: tuple[str, ...]


def append_line(path: str, line: str) -> None:
    """Append ``line`` + newline with ONE O_APPEND write(2).

    Raises ValueError for a line with a newline or over MAX_LINE bytes,
    OSError if the file cannot be written.
    """
    data = (line + "\n").encode("ascii")
    if "\n" in line or len(data) > MAX_LINE:
        raise ValueError("journal lines are single short ASCII lines")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def journal_inode(path: str) -> int | None:
    """Inode of ``path`` or None if it does not exist."""
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def read_chunk(
    path: str, offset: int, max_bytes: int = 1 << 20
) -> JournalChunk | None:
    """Complete lines of ``path`` from ``offset`` (None if missing).

    An ``offset`` beyond the end (the file was replaced) restarts at 0.
    Bytes that do not decode as ASCII are replaced, never raised.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by with below
    except FileNotFoundError:
        return None
    with handle:
        stat = os.fstat(handle.fileno())
        start = offset if 0 <= offset <= stat.st_size else 0
        handle.seek(start)
        data = handle.read(max_bytes)
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) == max_bytes:
        cut = len(data)  # one absurd line: skip it rather than stall
    text = data[:cut].decode("ascii", "replace")
    return JournalChunk(
        inode=stat.st_ino,
        start=start,
        end=start + cut,
        size=stat.st_size,
        lines=tuple(line for line in text.split("\n") if line),
    )


def rotate(path: str) -> int | None:
    """Rename ``path`` to ``path.old``; the moved inode, or None if there
    was nothing to rotate or a previous ``.old`` still exists."""
    old = path + OLD_SUFFIX
    inode = journal_inode(path)
    if inode is None or os.path.exists(old):
        return None
    os.rename(path, old)
    LOG.info("rotated journal %s", path)
    return inode


def age(path: str) -> float | None:
    """Seconds since ``path`` was last modified (None if missing)."""
    try:
        return time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def delete(path: str) -> None:
    """Remove ``path`` if present."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
