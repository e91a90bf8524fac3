"""A per-user cache of validated :class:`~flatnet.settings.Settings`,
so that a short-lived command (flatnet-manage, the lease hook) on an
unchanged configuration skips oslo.config: importing it (with stevedore,
importlib.metadata and rfc3986's regexes) and validating every option
cost ~45 ms of ``network list``'s ~300 ms (doc/benchmarks.md).

An entry is reused only if ALL of these are what they were when it was
built, else the configuration is read and validated again and the entry
replaced:

* the key: the config files' paths and bytes, how they were found, the
  ``OS_*`` environment (oslo.config reads ``OS_<GROUP>__<OPTION>``), the
  defaults that depend on the host (hostname, primary IPv4), the user,
  the interpreter;
* the stamps: path, mtime and size of every flatnet, oslo.config,
  netaddr and SQLAlchemy module loaded while building it (an upgraded or
  edited option, default or validator is a miss).

Trust: the directory (``$XDG_CACHE_HOME/flatnet``, else
``~/.cache/flatnet``) and the file must belong to the effective user and
be writable by nobody else, the file is opened without following links,
and unpickling may only construct flatnet's settings dataclasses and
netaddr addresses; anything else is a miss (logged at debug). A file
that cannot be written (read-only, disk full) only costs the next
command a full load. ``FLATNET_SETTINGS_CACHE=0`` turns it off; a file
that uses oslo.config's ``config_source`` (remote sources) is never
cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import pickle
import re
import stat
import sys
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flatnet import host_identity

if TYPE_CHECKING:
    from flatnet.settings import ConfigSource, Settings

LOG = logging.getLogger(__name__)
FORMAT = b"flatnet-settings-cache 1"
#: Kept in the directory after a write (oldest removed beyond this).
MAX_ENTRIES = 32
_STAMPED = ("flatnet", "oslo_config", "netaddr", "sqlalchemy")
_SETTINGS_MODULES = frozenset(
    {
        "flatnet.settings",
        "flatnet.settings.metadata",
        "flatnet.plan.settings",
        "flatnet.service.settings",
    }
)
_NETADDR = {("netaddr.ip", "IPAddress"), ("netaddr.ip", "IPNetwork")}

Stamp = tuple[str, int, int]
#: oslo.config's ``config_source`` option: settings from elsewhere.
_REMOTE = re.compile(rb"^[ \t]*config_source[ \t]*[=:]", re.MULTILINE)


def enabled() -> bool:
    return os.environ.get("FLATNET_SETTINGS_CACHE", "1") != "0"


def directory() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "flatnet")


def key(source: ConfigSource) -> bytes | None:
    """The digest of everything the settings are a function of, besides
    flatnet's code; None if the configuration must not be cached (a
    file unreadable here, or a remote ``config_source``)."""
    digest = hashlib.sha256(FORMAT)
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("OS_"))
    for part in (
        sys.executable,
        sys.version,
        str(os.geteuid()),
        host_identity.hostname(),
        host_identity.primary_ipv4(),
        repr(source),
        repr(env),
    ):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    for path in source.files:
        try:
            with open(path, "rb") as handle:
                text = handle.read()
        except OSError:
            return None
        if _REMOTE.search(text):
            return None
        digest.update(len(text).to_bytes(8, "big") + text)
    return digest.digest()


def _entry_path(source: ConfigSource) -> str:
    name = hashlib.sha256(repr(source.files).encode()).hexdigest()[:32]
    return os.path.join(directory(), f"{name}.settings")


def stamps() -> list[Stamp]:
    """Path, mtime and size of the loaded modules settings depend on."""
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and name.split(".")[0] in _STAMPED:
            found.append(path)
    return [s for s in map(_stamp, sorted(set(found))) if s is not None]


def _stamp(path: str) -> Stamp | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (path, info.st_mtime_ns, info.st_size)


def _private(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


class _Unpickler(pickle.Unpickler):
    """Builds only flatnet's settings dataclasses and netaddr addresses."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NETADDR:
            return super().find_class(module, name)
        if module in _SETTINGS_MODULES:
            found = getattr(sys.modules.get(module), name, None)
            if found is None:
                found = super().find_class(module, name)
            if isinstance(found, type) and dataclasses.is_dataclass(found):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed")


def _read(path: str) -> bytes | None:
    """The file's bytes if the directory and file are the user's own
    and nobody else's to write; None otherwise."""
    try:
        if not _private(os.lstat(os.path.dirname(path))):
            LOG.debug("settings cache %s: directory not private", path)
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or not _private(info):
            LOG.debug("settings cache %s: not a private file", path)
            return None
        return handle.read()


def lookup(source: ConfigSource, digest: bytes) -> Settings | None:
    """The cached settings of ``source``, if the entry is trusted, its
    key is ``digest`` and no stamped module changed."""
    from flatnet import settings as settings_module  # noqa: PLC0415

    data = _read(_entry_path(source))
    if data is None or not data.startswith(FORMAT + b"\n"):
        return None
    try:
        entry = _Unpickler(io.BytesIO(data[len(FORMAT) + 1 :])).load()
        stored, recorded, cached = entry
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, ImportError, IndexError) as exc:  # fmt: skip
        LOG.debug("settings cache: unreadable entry (%s)", exc)
        return None
    if stored != digest or not isinstance(cached, settings_module.Settings):
        return None
    if any(_stamp(path) != (path, m, s) for path, m, s in recorded):
        LOG.debug("settings cache: flatnet or a library changed")
        return None
    return cached


def store(
    source: ConfigSource,
    digest: bytes,
    built: Settings,
    recorded: Iterable[Stamp],
) -> None:
    """Write the entry (atomically, 0600, in a 0700 directory); a
    failure is logged at debug and otherwise ignored."""
    path = _entry_path(source)
    folder = os.path.dirname(path)
    data = FORMAT + b"\n" + pickle.dumps((digest, list(recorded), built))
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not _private(os.lstat(folder)):
            return
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)
            raise
        _prune(folder)
    except OSError as exc:
        LOG.debug("settings cache: not written (%s)", exc)


def _prune(folder: str) -> None:
    """Keep the newest MAX_ENTRIES entries (tests and scripts create a
    configuration per temporary directory)."""
    with os.scandir(folder) as found:
        entries = [e for e in found if e.name.endswith(".settings")]
    if len(entries) <= 2 * MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        try:
            os.unlink(old.path)
        except FileNotFoundError:
            pass  # another process pruned it first
