"""EXECUTOR: crash-safe file replacement under a directory flatnet owns.

``replace_file`` writes a hidden temporary file in the same directory,
fsyncs it, renames it over the target and fsyncs the directory, so a
reader (dnsmasq) sees either the old or the new content, never a torn
file, and the new content survives a crash (nova
linux_net.write_to_file wrote in place: a reader could see a torn
file). The temp
name starts with ``.`` because dnsmasq's --dhcp-hostsdir ignores
dotfiles (dnsmasq inotify.c).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator

from flatnet import exception

LOG = logging.getLogger(__name__)

#: The temporary name of :func:`replace_file`: ``.<target name>.`` plus
#: tempfile's 8 random characters ([a-z0-9_]).
_TEMP = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}$")


@contextlib.contextmanager
def _os_errors(path: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        # "No space left on device: /var/lib/.../nova-br100.conf": the
        # cause first, as the operator reads it in wait_ready's error.
        raise exception.HostNetworkError(
            f"{exc.strerror or exc}: {path}", reason=f"{path}: {exc}"
        ) from exc


def ensure_dir(path: str, mode: int = 0o755) -> None:
    """Create ``path`` (and parents) if missing; ``path`` itself ends up
    with exactly ``mode`` whatever the umask. Raises HostNetworkError."""
    with _os_errors(path):
        os.makedirs(path, mode=mode, exist_ok=True)
        if os.stat(path).st_mode & 0o7777 != mode:
            os.chmod(path, mode)


def closed_to_others(path: str) -> str | None:
    """The first directory from ``path`` up to ``/`` that others
    (dnsmasq after dropping to ``nobody``) cannot traverse (no o+x),
    or None if every one can. A missing directory is skipped (it will
    be created 0755). Raises HostNetworkError if one cannot be stat'ed.
    """
    current = os.path.abspath(path)
    while True:
        with _os_errors(current):
            try:
                mode = os.stat(current).st_mode
            except FileNotFoundError:
                mode = stat.S_IXOTH
        if not mode & stat.S_IXOTH:
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def read_text(path: str) -> str | None:
    """The file's text, or None if it does not exist."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(
    path: str, content: str, mode: int = 0o644, durable: bool = True
) -> None:
    """Atomically make ``path`` contain ``content`` with ``mode``.

    ``durable=False`` skips both fsyncs (still atomic for readers); use it
    for files that are re-derived from the database after a crash.
    Raises HostNetworkError; on failure the old file is untouched and no
    temporary file is left behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    with _os_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                if durable:
                    os.fsync(handle.fileno())
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if durable:
            _fsync_dir(directory)


def differs(path: str, content: str, mode: int = 0o644) -> bool:
    """True unless ``path`` holds exactly ``content`` with ``mode``."""
    try:
        current_mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return True
    return current_mode != mode or read_text(path) != content


def ensure_file(path: str, content: str, mode: int = 0o644) -> bool:
    """Write ``content`` only if it differs (or the mode does).

    Returns True when the file was (re)written. Raises HostNetworkError.
    """
    if not differs(path, content, mode):
        return False
    replace_file(path, content, mode)
    return True


def delete_file(path: str) -> bool:
    """Remove ``path``; True if it existed. Raises HostNetworkError."""
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise exception.HostNetworkError(
            reason=f"{path}: {exc.strerror}"
        ) from exc
    return True


def list_dir(path: str) -> list[str]:
    """Names of the non-hidden entries of ``path`` ([] if missing)."""
    try:
        return sorted(n for n in os.listdir(path) if not n.startswith("."))
    except FileNotFoundError:
        return []


def delete_temp_files(directory: str, prefix: str = "") -> list[str]:
    """Remove the temporary files :func:`replace_file` leaves behind
    when its process is killed mid-write: ``.<name>.XXXXXXXX`` in
    ``directory`` whose target ``<name>`` starts with ``prefix``.
    Returns the names removed. Raises HostNetworkError."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    removed = []
    for name in sorted(names):
        found = _TEMP.match(name)
        if found and found.group("target").startswith(prefix):
            delete_file(os.path.join(directory, name))
            removed.append(name)
    return removed
