"""The services' settings (light: no database, no asyncio, no executor).

:class:`DaemonTiming` (:mod:`flatnet.service.daemon`), :class:`DhcpTuning`
(:mod:`flatnet.service.dhcp_keeper`), :class:`IngestPolicy`
(:mod:`flatnet.service.leases`), :class:`ManagerSettings`
(:mod:`flatnet.service.manager`), :class:`CacheSettings`
(:mod:`flatnet.service.metadata_cache`) and :class:`MetadataSettings`
(:mod:`flatnet.service.metadata_server`) live here so that building
:class:`flatnet.settings.Settings`, which every flatnet command does,
imports none of those services; each service re-exports its class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flatnet import ipam


@dataclasses.dataclass(frozen=True, slots=True)
class DaemonTiming:
    sync_interval: float = 0.1
    # after a poll that found lease events (service/daemon.py Polled.busy)
    busy_interval: float = 0.01
    periodic_interval: float = 60.0
    disassociate_timeout: float = 600.0
    max_backoff: float = 30.0
    remind_every: float = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class DhcpTuning:
    compact_files: int = 2000
    # NOTE: dnsmasq answers nothing while it handles a hostsdir file.
    # Each file costs a fixed pass over all leases x configs (inotify.c
    # -> lease_update_from_configs: ~2 ms with no leases, +0.2 s per
    # 1,000 leases at 10k hosts) plus ~0.5 ms per hosts line at 10k
    # (doc/dhcp.md). So one file per batch, each confirmed by a probe:
    # small batches (16 hosts: ~20 ms at 10k hosts), but
    # ``hostsdir_batch_max`` once a small batch takes more than
    # ``slow_batch`` to be served: the per-line part of 16 lines is
    # < 10 ms, so that is dnsmasq's fixed pass (leases x configs), and
    # then fewer events is all that helps.
    hostsdir_batch: int = 16
    hostsdir_batch_max: int = 512
    slow_batch: float = 0.2
    served_timeout: float = 5.0
    release_attempts: int = 3
    release_interval: float = 0.3
    # how often the keeper thread checks that dnsmasq lives (0: no
    # thread; tests call ``keeper.check()`` themselves)
    keeper_interval: float = 0.05
    lease_refresh: float = 1.0
    # Lua hook: a lease not confirmed (add/old, every renewal with
    # --script-on-renewal) for lease time + this is expired by the
    # daemon, checked every ``lease_expiry_interval`` seconds
    lease_expiry_grace: float = 30.0
    lease_expiry_interval: float = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class IngestPolicy:
    """When to rotate a consumed journal and drop the rotated one."""

    rotate_bytes: int = 16 << 20
    old_grace: float = 5.0
    max_bytes: int = 1 << 20


@dataclasses.dataclass(frozen=True, slots=True)
class ManagerSettings:
    """The options the manager needs (from [DEFAULT], nova names)."""

    flat_network_bridge: str | None = None
    flat_interface: str | None = None
    flat_network_dns: str | None = "8.8.4.4"
    multi_host: bool = False
    share_dhcp_address: bool = False
    create_unique_mac_address_attempts: int = 5
    max_network_size: int = ipam.MAX_NETWORK_SIZE


@dataclasses.dataclass(frozen=True, slots=True)
class CacheSettings:
    """How long answers are kept and how many."""

    ttl: float = 15.0
    negative_ttl: float = 1.0
    max_entries: int = 65536


TOKEN_MODES = ("disabled", "optional", "required")


@dataclasses.dataclass(frozen=True, slots=True)
class MetadataSettings:
    """Everything the metadata server needs (the lead fills it from
    configuration; nova's names: ``metadata_listen``,
    ``metadata_listen_port``, ``metadata_cache_expiration``)."""

    listen_host: str = "0.0.0.0"  # noqa: S104 (nova metadata_listen)
    listen_port: int = 8775
    tokens: str = "optional"
    max_head_bytes: int = 8192
    max_headers: int = 64
    header_timeout: float = 5.0
    idle_timeout: float = 30.0
    max_connections: int = 2048
    max_connections_per_ip: int = 64
    lookup_workers: int = 4
    cache: CacheSettings = CacheSettings()
    generation_interval: float = 1.0
    shutdown_grace: float = 5.0
    access_log: bool = False
    vendor_data: Mapping[str, Any] | None = None
    backlog: int = 1024

    def __post_init__(self) -> None:
        if self.tokens not in TOKEN_MODES:
            raise ValueError(
                f"metadata tokens must be one of {', '.join(TOKEN_MODES)},"
                f" not {self.tokens!r}"
            )
        if not 0 <= self.listen_port <= 65535:
            raise ValueError(f"invalid metadata port {self.listen_port}")
        for name in ("max_head_bytes", "max_headers", "max_connections",
                     "max_connections_per_ip", "lookup_workers"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"metadata {name} must be at least 1")
        for name in ("header_timeout", "idle_timeout", "generation_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"metadata {name} must be positive")
