"""Configuration: oslo.config options under nova's names.

Nothing is registered at import. ``cmd/`` calls :func:`register_opts` on a
fresh ``cfg.ConfigOpts`` and then :func:`parse`; unknown options in a
nova.conf are ignored by oslo.config, so a real nova-network host's file
loads as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from oslo_config import cfg

from flatnet.conf import database, dhcp, firewall, metadata, network, tuning


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every flatnet option on ``conf`` (idempotent)."""
    conf.register_opts(network.opts())
    conf.register_opts(dhcp.opts())
    conf.register_opts(firewall.opts())
    conf.register_opts(tuning.opts())
    conf.register_opts(database.opts(), group=database.GROUP)
    conf.register_opts(metadata.opts())
    conf.register_opts(metadata.api_opts(), group=metadata.API_GROUP)
    conf.register_opts(metadata.metadata_opts(), group=metadata.GROUP)


def parse(
    argv: Sequence[str],
    default_config_files: Sequence[str] | None = None,
    conf: cfg.ConfigOpts | None = None,
) -> cfg.ConfigOpts:
    """Return a ConfigOpts with flatnet's options registered and parsed."""
    conf = conf if conf is not None else cfg.ConfigOpts()
    register_opts(conf)
    conf(
        list(argv),
        project="flatnet",
        default_config_files=(
            list(default_config_files)
            if default_config_files is not None
            else []
        ),
    )
    return conf
