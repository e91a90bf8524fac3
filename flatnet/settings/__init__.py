"""ONE typed, frozen settings object, built once from the configuration.

Every flatnet process (flatnet-manage, flatnet-network, the Python
lease hook; later the compute role, the metadata service and the
compute-driver API) calls :func:`load` once at start-up and hands the
resulting :class:`Settings` to :mod:`flatnet.wiring`. Nothing else reads
oslo.config: ``plan``, ``linux``, ``db`` and ``service`` take the typed
objects built here, whose classes live in two light modules,
:mod:`flatnet.plan.settings` (``DhcpSettings``, ``HostRulesSettings``,
``FirewallSettings``) and :mod:`flatnet.service.settings`
(``DaemonTiming``, ``DhcpTuning``, ``IngestPolicy``, ``ManagerSettings``,
``MetadataSettings``), so that building Settings loads no planner, no
service, no asyncio: a ``flatnet-manage`` call pays only for what its
command uses.

:func:`load` reads and validates EVERY registered option (type, range,
finiteness, addresses, device names, paths), whatever the command, so a
bad value is one line naming the option, its value and its file
(:class:`~flatnet.exception.ConfigError`) before anything happens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flatnet.plan.settings import (
        DhcpSettings,
        FirewallSettings,
        HostRulesSettings,
    )
    from flatnet.service.settings import (
        DaemonTiming,
        DhcpTuning,
        IngestPolicy,
        ManagerSettings,
    )
    from flatnet.settings.metadata import MetadataService

__all__ = [
    "DEFAULT_CONFIG_FILES",
    "ConfigSource",
    "DatabaseSettings",
    "OptionOrigin",
    "Settings",
    "load",
]


#: Where every flatnet command looks when no --config-file is given.
DEFAULT_CONFIG_FILES = ("/etc/flatnet/flatnet.conf",)


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigSource:
    """The files a process read, and how it found them."""

    files: tuple[str, ...]
    searched: bool = False

    def describe(self) -> str:
        how = "found by the default search" if self.searched else "given"
        return f"{', '.join(self.files)} ({how})"


@dataclasses.dataclass(frozen=True, slots=True)
class OptionOrigin:
    """One option's value as shown by ``flatnet-manage config show``."""

    group: str
    name: str
    value: str
    origin: str  # a file name, or "default"


@dataclasses.dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """``[database]``: where the database is and how to reach it."""

    url: str
    #: The file that set ``[database] connection``, or "default".
    origin: str
    busy_timeout: float = 60.0
    #: The SQLite file's directory holds nothing dnsmasq (``nobody``)
    #: must traverse, so it may be created 0700.
    private_directory: bool = False

    def display(self) -> str:
        """The URL with any password hidden (for messages and logs)."""
        scheme, sep, rest = self.url.partition("://")
        creds, at, host = rest.rpartition("@")
        if not sep or not at or ":" not in creds:
            return self.url
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything any flatnet process reads from its configuration."""

    source: ConfigSource
    host: str
    state_path: str
    database: DatabaseSettings
    manager: ManagerSettings
    default_floating_pool: str
    #: Default interface of new floating IPs (floating create).
    public_interface: str | None
    flat_interface: str | None
    dhcp: DhcpSettings
    dhcp_tuning: DhcpTuning
    lease_journal: IngestPolicy
    force_dhcp_release: bool
    host_rules: HostRulesSettings
    iptables_backend: str
    daemon: DaemonTiming
    #: flatnet-metadata (listen address, limits, vendor data file).
    metadata: MetadataService
    #: ``[DEFAULT] flatnet_roles``: "network" and/or "compute".
    roles: tuple[str, ...]
    #: The compute role's instance filters (plan.firewall).
    firewall: FirewallSettings
    #: The compute role also defines libvirt nwfilters.
    use_nwfilter: bool
    #: Things a process should log at start (e.g. nova's hook ignored).
    notes: tuple[str, ...] = ()
    #: Every option with its value and origin (flatnet-manage config show).
    options: tuple[OptionOrigin, ...] = ()


def load(
    paths: Sequence[str] = (),
    defaults: Sequence[str] = DEFAULT_CONFIG_FILES,
    *,
    with_origins: bool = False,
    cached: bool = False,
) -> Settings:
    """Find, parse and validate the configuration; the one entry point.

    ``paths`` are the --config-file arguments; without them the
    first existing file of ``defaults`` is read (and none is an error).
    ``with_origins`` also records every option's value and the file
    that set it (``options``). ``cached``: reuse (and keep) the result
    of an earlier load of the same, unchanged configuration
    (:mod:`flatnet.settings.cache`; short-lived commands). Raises
    ConfigError naming the file (and the option) of any problem.
    """
    # light: the cache must be able to skip oslo.config
    from flatnet.settings import cache, config_files  # noqa: PLC0415

    source = config_files.find_config(paths, defaults)
    if not cached or with_origins or not cache.enabled():
        return _build(source, with_origins)
    digest = cache.key(source)
    if digest is None:
        return _build(source, with_origins)
    found = cache.lookup(source, digest)
    if found is not None:
        return found
    built = _build(source, with_origins)
    cache.store(source, digest, built, cache.stamps())
    return built


def _build(source: ConfigSource, with_origins: bool) -> Settings:
    # oslo.config and the layers' settings classes are imported here,
    # not at import: flatnet-manage --help needs neither.
    from flatnet.settings import reader, sections  # noqa: PLC0415

    options = reader.OptionReader(reader.parse(source), source)
    return sections.build(options, with_origins=with_origins)
