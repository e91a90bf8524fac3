"""The metadata service's section of :class:`flatnet.settings.Settings`.

Builds :class:`~flatnet.service.settings.MetadataSettings` from
``metadata_listen``, ``metadata_listen_port``, ``[api]
metadata_cache_expiration`` and ``[metadata]``; the vendor data file is
only checked to be an absolute path here (flatnet-metadata reads it at
start-up: other commands do not need it).
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import netaddr

from flatnet import exception, hostname
from flatnet.service.settings import CacheSettings, MetadataSettings

if TYPE_CHECKING:  # building needs it; the settings cache does not
    from flatnet.settings.reader import OptionReader


@dataclasses.dataclass(frozen=True, slots=True)
class MetadataService:
    """Everything flatnet-metadata reads from the configuration."""

    server: MetadataSettings
    #: nova ``vendordata_jsonfile_path`` (absolute), or None.
    vendordata_path: str | None = None
    #: nova ``default_availability_zone``: the AZ of instances naming none.
    availability_zone: str = "nova"


def _address(value: str) -> str:
    try:
        return str(netaddr.IPAddress(value))
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise exception.InvalidInput(reason="not an IP address") from exc


def _path(value: str | None) -> str | None:
    if not value:
        return None
    if not value.startswith("/") or not value.isprintable():
        raise exception.InvalidInput(reason="must be an absolute path")
    return os.path.normpath(value)


def build(r: OptionReader) -> MetadataService:
    """Raises ConfigError naming the option of a bad value."""
    group = "metadata"
    ttl = r.get("metadata_cache_expiration", "api")
    server = MetadataSettings(
        listen_host=r.get("metadata_listen", check=_address),
        listen_port=r.get("metadata_listen_port"),
        tokens=r.get("tokens", group),
        max_connections=r.get("max_connections", group),
        max_connections_per_ip=r.get("max_connections_per_ip", group),
        lookup_workers=r.get("lookup_workers", group),
        cache=CacheSettings(ttl=float(ttl), negative_ttl=min(1.0, ttl)),
        generation_interval=r.get("generation_interval", group),
        shutdown_grace=r.get("shutdown_grace", group),
        access_log=r.get("access_log", group),
    )
    return MetadataService(
        server=server,
        vendordata_path=r.get("vendordata_jsonfile_path", "api", check=_path),
        availability_zone=r.get(
            "default_availability_zone",
            check=lambda v: hostname.check_text(v, "the value"),
        ),
    )
