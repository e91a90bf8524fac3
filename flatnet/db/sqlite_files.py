"""The SQLite database file: created root-only, never by accident.

The database holds instance names (and later user data and keys), so
the file is created 0600 before SQLite opens it; SQLite creates its
``-wal`` and ``-shm`` files with the database file's mode (sqlite3
os_unix.c, findCreateFileMode). Only ``flatnet-manage db sync`` creates
the file: any other command on a missing file says so instead of
silently starting an empty database somewhere.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator

from flatnet import exception

LOG = logging.getLogger(__name__)

FILE_MODE = 0o600
SUFFIXES = ("", "-wal", "-shm")


def ensure_file(path: str, *, create: bool, private_directory: bool) -> None:
    """Make sure ``path`` exists (creating it 0600 with ``create``).

    Raises DatabaseNotInitialised (missing, no ``create``),
    DatabaseUnavailable (cannot create it), DatabaseFull (no space).
    """
    if os.path.exists(path):
        return
    if not create:
        raise exception.DatabaseNotInitialised(
            database=path, reason="the file does not exist"
        )
    with _os_errors(path):
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, mode=0o700 if private_directory else 0o755)
            LOG.info("created directory %s", parent)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             FILE_MODE))  # fmt: skip
            LOG.info("created database file %s (mode 0600)", path)


def tighten(path: str) -> list[str]:
    """chmod 0600 the database file and its -wal/-shm if group or others
    may read them (files of older flatnet versions); returns what was
    changed. Raises DatabaseUnavailable."""
    changed = []
    for name in (path + suffix for suffix in SUFFIXES):
        with _os_errors(name):
            try:
                mode = stat.S_IMODE(os.stat(name).st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077:
                os.chmod(name, FILE_MODE)
                changed.append(name)
    for name in changed:
        LOG.warning("%s was readable by others; now mode 0600", name)
    return changed


@contextlib.contextmanager
def _os_errors(path: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise exception.DatabaseFull(
                database=path, path=os.path.dirname(path)
            ) from exc
        raise exception.DatabaseUnavailable(
            database=path, reason=exc.strerror or str(exc)
        ) from exc
