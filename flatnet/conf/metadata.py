"""flatnet-metadata options.

nova's own names where nova had the option: ``metadata_listen`` and
``metadata_listen_port`` in [DEFAULT] (nova/conf/service.py),
``metadata_cache_expiration`` and ``vendordata_jsonfile_path`` in [api]
(nova/conf/api.py; nova 16 still read them from [DEFAULT] too), and
``default_availability_zone`` (nova/conf/availability_zone.py). The
rest is flatnet's own, in [metadata].
"""

from __future__ import annotations

from oslo_config import cfg

API_GROUP = "api"
GROUP = "metadata"


def opts() -> list[cfg.Opt]:
    """[DEFAULT] options (nova names)."""
    return [
        cfg.StrOpt(
            "metadata_listen",
            default="0.0.0.0",  # noqa: S104 - nova's default
            help="Address flatnet-metadata listens on.",
        ),
        cfg.PortOpt(
            "metadata_listen_port",
            default=8775,
            help="Port flatnet-metadata listens on (the metadata DNAT "
            "sends 169.254.169.254:80 to metadata_host:metadata_port).",
        ),
        cfg.StrOpt(
            "default_availability_zone",
            default="nova",
            help="Availability zone of instances that name none "
            "(placement/availability-zone).",
        ),
    ]


def api_opts() -> list[cfg.Opt]:
    """[api] options (nova names; [DEFAULT] accepted as nova 16 did)."""
    return [
        cfg.IntOpt(
            "metadata_cache_expiration",
            default=15,
            min=0,
            max=86400,
            deprecated_group="DEFAULT",
            help="Seconds an instance's metadata is cached (0: no "
            "cache). Database changes invalidate it sooner.",
        ),
        cfg.StrOpt(
            "vendordata_jsonfile_path",
            deprecated_group="DEFAULT",
            help="JSON file (an object) served as vendor_data.json.",
        ),
    ]


def metadata_opts() -> list[cfg.Opt]:
    """[metadata] options (flatnet only)."""
    return [
        cfg.StrOpt(
            "tokens",
            default="optional",
            choices=["disabled", "optional", "required"],
            help="flatnet: IMDSv2-style session tokens (PUT "
            "/latest/api/token): 'required' refuses requests without "
            "one, 'optional' checks a token only when one is sent.",
        ),
        cfg.IntOpt(
            "max_connections",
            default=2048,
            min=1,
            max=1000000,
            help="flatnet: open connections in total (more get 503).",
        ),
        cfg.IntOpt(
            "max_connections_per_ip",
            default=64,
            min=1,
            max=1000000,
            help="flatnet: open connections per source address.",
        ),
        cfg.IntOpt(
            "lookup_workers",
            default=4,
            min=1,
            max=256,
            help="flatnet: threads running database lookups.",
        ),
        cfg.FloatOpt(
            "generation_interval",
            default=1.0,
            min=0.05,
            max=3600.0,
            help="flatnet: seconds between checks of the database "
            "generations; a change drops the cache.",
        ),
        cfg.FloatOpt(
            "shutdown_grace",
            default=5.0,
            min=0.0,
            max=300.0,
            help="flatnet: seconds requests in flight may take to finish "
            "after SIGTERM.",
        ),
        cfg.BoolOpt(
            "access_log",
            default=False,
            help="flatnet: log every request at INFO (else DEBUG).",
        ),
    ]
