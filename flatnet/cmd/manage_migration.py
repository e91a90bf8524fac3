"""flatnet-manage migration commands: the parsers (light; the handlers
are in :mod:`flatnet.cmd.migration_commands`):

    import nova --connection URL [--format json]
    export neutron [--output DIR] [--format json] [--preserve]
                   [--physical-network NAME]
    migration report [--format json|table] [--preserve]
                     [--nova-connection URL]
"""

from __future__ import annotations

import argparse

from flatnet.cmd import cli

#: The top-level words this module registers, with their help.
HELP = {
    "import": "import another system's database",
    "export": "export to another system",
    "migration": "migration rehearsal",
}


def _neutron_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preserve",
        action="store_true",
        help="Neutron settings that keep what guests see (DHCP port at "
        "flatnet's DHCP address, dns_domain = dhcp_domain, dns_name, "
        "lease time, no subnet DNS servers)",
    )
    parser.add_argument("--physical-network", help="default physnet1")


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    """Register ``import nova``, ``export neutron``, ``migration report``."""
    imp = cli.actions(groups, "import", HELP["import"])
    nova = cli.leaf(
        imp,
        common,
        "nova",
        "migration_commands:import_nova",
        "import a nova-network database (idempotent, one transaction)",
    )
    nova.add_argument("--connection", required=True, metavar="URL",
                      help="SQLAlchemy URL of nova's database")  # fmt: skip
    cli.add_format(nova)
    exp = cli.actions(groups, "export", HELP["export"])
    neutron = cli.leaf(
        exp,
        common,
        "neutron",
        "migration_commands:export_neutron",
        "Neutron API bodies and DHCP agent files",
    )
    neutron.add_argument(
        "--output",
        metavar="DIR",
        help="write the files under DIR (default: print them)",
    )
    cli.add_format(neutron)
    _neutron_args(neutron)
    mig = cli.actions(groups, "migration", HELP["migration"])
    rep = cli.leaf(
        mig,
        common,
        "report",
        "migration_commands:migration_report",
        "what guests would see change under Neutron",
    )
    cli.add_format(rep)
    _neutron_args(rep)
    rep.add_argument(
        "--nova-connection",
        metavar="URL",
        help="also show the host names the import changed (live nova "
        "instances that shared one), read from nova's database",
    )
