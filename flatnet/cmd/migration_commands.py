"""flatnet-manage import/export/migration: the handlers (the parsers are
in :mod:`flatnet.cmd.manage_migration`).

Handlers take ``(ctx, args)`` and use only ``ctx.db`` (flatnet's
database), ``ctx.settings.dhcp`` (``dhcp_domain``, ``dhcp_lease_time``,
``share_dhcp_address``), ``ctx.settings.firewall``
(``allow_same_net_traffic``, for the exported group rules) and
``ctx.out``; ``migration report --nova-connection`` also reads nova's
database (read-only) for the host names the import changed; the progress
bar goes to ``sys.stderr`` when it is a terminal. ``migration report``
exits 3 when guests would see a difference (as ``verify`` does), 0
otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, TextIO

from flatnet.cmd import cli, output
from flatnet.db import api as db_api
from flatnet.migrate import neutron_export as nx
from flatnet.migrate import nova_import, report, writer
from flatnet.migrate.progress import ProgressBar
from flatnet.plan.dnsmasq import DhcpSettings


def flatnet_dhcp(
    conf: DhcpSettings, shard_servers: dict[str, str] | None = None
) -> report.FlatnetDhcp:
    return report.FlatnetDhcp(
        dhcp_domain=conf.dhcp_domain,
        dhcp_lease_time=conf.dhcp_lease_time,
        share_dhcp_address=conf.share_dhcp_address,
        shard_servers=shard_servers or {},
    )


def shard_servers(db: db_api.Database) -> dict[str, str]:
    """Port address -> its DHCP shard's address (sharded networks)."""
    found: dict[str, str] = {}
    for net in db_api.network_list(db):
        shards = {
            s.index: str(s.address) for s in db_api.shard_list(db, net.id)
        }
        if shards:
            for e in db_api.host_entries(db, net.id):
                if e.shard in shards:
                    found[str(e.address)] = shards[e.shard]
    return found


def neutron_settings(
    conf: DhcpSettings, args: argparse.Namespace
) -> nx.NeutronSettings:
    if getattr(args, "preserve", False):
        settings = nx.preserving(conf.dhcp_domain, conf.dhcp_lease_time)
    else:
        settings = nx.NeutronSettings()
    physnet = getattr(args, "physical_network", None)
    if physnet:
        settings = dataclasses.replace(settings, physical_network=physnet)
    return settings


def import_nova(
    ctx: cli.Context, args: argparse.Namespace, err: TextIO | None = None
) -> int:
    stream = err or sys.stderr
    bars: list[ProgressBar] = []

    def progress(total: int) -> Any:
        bars.append(ProgressBar(stream, "import", total))
        return bars[-1].advance

    try:
        summary = nova_import.import_nova(ctx.db, args.connection, progress)
    finally:
        for bar in bars:
            bar.close()
    text = nova_import.summary_text(summary)
    return cli.write(ctx, args, text, nova_import.summary_dict(summary))


def _export(ctx: cli.Context, args: argparse.Namespace) -> report.Export:
    networks, ports, reserved = writer.read_inputs(ctx.db)
    settings = neutron_settings(ctx.settings.dhcp, args)
    same_net = ctx.settings.firewall.allow_same_net_traffic
    extras = writer.read_extras(ctx.db, networks, ports, same_net)
    return report.build_export(
        networks, ports, reserved, settings, extras=extras
    )


def export_neutron(ctx: cli.Context, args: argparse.Namespace) -> int:
    export = _export(ctx, args)
    contents = writer.export_files(export)
    if args.output:
        written = writer.write_export(args.output, contents)
        ctx.out.write(f"wrote {len(written)} files under {args.output}\n")
        ctx.out.write("Neutron options these files assume:\n")
        ctx.out.write("".join(f"  {o}\n" for o in export.options))
        return 0
    data = {"api": export.api, "files": export.files, "argv": export.argv,
            "options": export.options, "refs": export.refs}  # fmt: skip
    if args.format == "json":
        ctx.out.write(output.to_json(data))
    else:
        ctx.out.write(
            "".join(f"== {k}\n{v}\n" for k, v in sorted(contents.items()))
        )
    return 0


def migration_report(ctx: cli.Context, args: argparse.Namespace) -> int:
    networks, ports, reserved = writer.read_inputs(ctx.db)
    settings = neutron_settings(ctx.settings.dhcp, args)
    export = report.build_export(networks, ports, reserved, settings)
    found = report.guest_report(
        networks,
        ports,
        export.dhcp_ports,
        flatnet_dhcp(ctx.settings.dhcp, shard_servers(ctx.db)),
        settings,
    )
    if getattr(args, "nova_connection", None):
        renames = nova_import.renames(args.nova_connection)
        found = (
            report.rename_entries(
                renames, networks, ports, export.dhcp_ports, settings
            )
            + found
        )
    cli.write(ctx, args, report.report_table(found), found)
    return 3 if found else 0
