"""list_opts() for oslo-config-generator (entry point oslo.config.opts)."""

from __future__ import annotations

from oslo_config import cfg

from flatnet.conf import database, dhcp, firewall, metadata, network, tuning


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [
        (
            "DEFAULT",
            network.opts()
            + dhcp.opts()
            + firewall.opts()
            + tuning.opts()
            + metadata.opts(),
        ),
        (database.GROUP, database.opts()),
        (metadata.API_GROUP, metadata.api_opts()),
        (metadata.GROUP, metadata.metadata_opts()),
    ]
