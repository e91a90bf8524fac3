"""EXECUTOR: an append-only event journal (append, read from an offset).

Writers (the dnsmasq hooks, running as root) append each record as ONE
O_APPEND write of ``\n<line>\n``: it starts on a fresh line, so a torn
tail (a full disk cuts a write at a block boundary, e.g.
``add fa:16:3e:08:9e:2f 10``) can never swallow the next record: it
becomes a line of its own, which the reader marks torn (:data:`TORN`)
when it can tell (see :func:`read_chunk`) and the parser rejects. The
reader returns only complete lines after a known ``(inode, offset)`` and
the offset just past them. Rotation renames the journal to
``<path>.old`` (a writer that opened it just before the rename finishes
into the old inode, drained later) and the next one is created
anew.

Disk full: :func:`reserve` keeps space allocated past the end of the
journal (fallocate(2) ``FALLOC_FL_KEEP_SIZE``), so appends go on while
the filesystem is full; a record that still cannot be written is counted
by the hook in the loss file (:func:`read_losses`), rewritten in place.
Journal and loss file are root-only (0600): dnsmasq's script runs as
root, its ``nobody`` server never reads them.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import functools
import logging
import os
import time

LOG = logging.getLogger(__name__)

OLD_SUFFIX = ".old"
MAX_LINE = 512
MODE = 0o600
TORN = "#torn "
RESERVE_BYTES = 1 << 20
_FALLOC_FL_KEEP_SIZE = 1
_COUNTER = "{:12d}\n"
_COUNTER_LEN = 13


@dataclasses.dataclass(frozen=True, slots=True)
class JournalChunk:
    """Complete lines of one journal inode between two offsets."""

    inode: int
    start: int
    end: int
    size: int
    lines: tuple[str, ...]


def append_line(path: str, line: str) -> None:
    """Append ``\n`` + ``line`` + ``\n`` with ONE O_APPEND write(2)
    (a new journal is created 0600).

    Raises ValueError for a line with a newline or over MAX_LINE bytes,
    OSError if the file cannot be written (a short write included).
    """
    data = ("\n" + line + "\n").encode("ascii")
    if "\n" in line or len(data) > MAX_LINE:
        raise ValueError("journal lines are single short ASCII lines")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, MODE)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    finally:
        os.close(fd)


def journal_inode(path: str) -> int | None:
    """Inode of ``path`` or None if it does not exist."""
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def end(path: str) -> tuple[int, int] | None:
    """``(inode, size)`` of ``path``, None if it does not exist."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_size


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
        lines=_mark_torn(text.split("\n")),
    )


def _mark_torn(raw: list[str]) -> tuple[str, ...]:
    """Non-empty lines; a torn record gets the :data:`TORN` prefix.

    Writers emit ``\n<record>\n``, so records are separated by an empty
    line. A record cut short has no newline of its own: the next
    record's leading newline ends it and that record follows at once.
    So a line that comes right after an empty line and is followed by
    a non-empty one is torn. (Lines of older writers, without empty
    lines between them, are taken as they are.)
    """
    lines: list[str] = []
    for index, line in enumerate(raw):
        if not line:
            continue
        after = raw[index + 1] if index + 1 < len(raw) else ""
        torn = index > 0 and not raw[index - 1] and after
        lines.append(TORN + line if torn else line)
    return tuple(lines)


def rotate(path: str) -> int | None:
    """Rename ``path`` to ``path.old``; the moved inode, or None if there
    was nothing to rotate or a previous ``.old`` still exists. The next
    journal is created at once, 0600 (a writer may have created it
    first): the Lua hook's ``io.open`` would create it with dnsmasq's
    umask (022, dnsmasq.c), readable by all."""
    old = path + OLD_SUFFIX
    inode = journal_inode(path)
    if inode is None or os.path.exists(old):
        return None
    os.rename(path, old)
    LOG.info("rotated journal %s", path)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE))
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


@functools.cache
def _fallocate() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    libc = ctypes.CDLL(None, use_errno=True)
    func = libc.fallocate
    func.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int64,
        ctypes.c_int64,
    ]
    func.restype = ctypes.c_int
    return func


def reserve(path: str, nbytes: int = RESERVE_BYTES) -> int:
    """Keep at least ``nbytes // 2`` allocated past the end of ``path``
    (created 0600 if missing, chmod 0600 if not), topping it up to
    ``nbytes`` with fallocate(2) ``FALLOC_FL_KEEP_SIZE``: the size is
    unchanged, appends then need no new block.

    Returns the bytes reserved past the end. Raises OSError (ENOSPC
    while the filesystem is full; EOPNOTSUPP where fallocate is not
    supported).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, MODE)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o777 != MODE:
            os.fchmod(fd, MODE)
        spare = info.st_blocks * 512 - info.st_size
        if spare >= nbytes // 2:
            return spare
        if _fallocate()(fd, _FALLOC_FL_KEEP_SIZE, info.st_size, nbytes):
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        info = os.fstat(fd)
        return info.st_blocks * 512 - info.st_size
    finally:
        os.close(fd)


def error_path(path: str) -> str:
    """The Lua hook's error file of journal ``path`` (``.hookerr``)."""
    return path.removesuffix(".events") + ".hookerr"


def read_new(path: str, offset: int, limit: int = 1 << 16) -> tuple[int, str]:
    """``(size, text)``: what ``path`` holds past ``offset`` (at most
    ``limit`` bytes; from 0 if it shrank), ``(0, "")`` if missing.
    Raises OSError."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by with below
    except FileNotFoundError:
        return 0, ""
    with handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(offset if 0 <= offset <= size else 0)
        return size, handle.read(limit).decode("ascii", "replace")


def truncate(path: str) -> None:
    """Empty ``path`` (its writers append: O_APPEND). Raises OSError."""
    os.truncate(path, 0)


def loss_path(path: str) -> str:
    """The loss file of journal ``path`` (``.events`` -> ``.lost``)."""
    return path.removesuffix(".events") + ".lost"


@dataclasses.dataclass(frozen=True, slots=True)
class Losses:
    """Records the hooks could not write, and how many were recovered."""

    lost: int = 0
    recovered: int = 0

    @property
    def pending(self) -> int:
        return max(0, self.lost - self.recovered)


def _counter(text: str) -> int:
    value = text.strip()
    return int(value) if value.isdigit() else 0


def read_losses(path: str) -> Losses:
    """The counters of loss file ``path`` (zeros if missing or bad).

    Line 1 (13 bytes) is written by the hooks, line 2 by the daemon;
    each is rewritten in place, never truncated.
    """
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(2 * _COUNTER_LEN)
    except FileNotFoundError:
        return Losses()
    first, second = text[:_COUNTER_LEN], text[_COUNTER_LEN:]
    return Losses(lost=_counter(first), recovered=_counter(second))


def ensure_loss_file(path: str) -> None:
    """Create loss file ``path`` (0600, two zero counters) if missing,
    so a hook can count in place on a full disk. Raises OSError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    except FileExistsError:
        return
    try:
        os.write(fd, (_COUNTER.format(0) * 2).encode("ascii"))
    finally:
        os.close(fd)


def mark_recovered(path: str, lost: int) -> None:
    """Record (in place) that losses up to ``lost`` were recovered.
    Raises OSError."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, _COUNTER.format(lost).encode("ascii"), _COUNTER_LEN)
    finally:
        os.close(fd)


def count_lost(path: str) -> None:
    """Add one to the hooks' counter of loss file ``path``, in place
    (what the sh hook does; for the Python hook). Raises OSError."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, MODE)
    try:
        value = _counter(
            os.pread(fd, _COUNTER_LEN, 0).decode("ascii", "replace")
        )
        os.pwrite(fd, _COUNTER.format(value + 1).encode("ascii"), 0)
    finally:
        os.close(fd)
