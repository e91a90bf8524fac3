"""flatnet-manage verify | repair: the handler (loads the iptables and
netlink machinery, so it is imported only when one of them runs)."""

from __future__ import annotations

import argparse

from flatnet import wiring
from flatnet.cmd import cli
from flatnet.cmd.manage_rules import DIFFERS
from flatnet.db import api as db_api
from flatnet.service import rules_reconciler


def rules_check(ctx: cli.Context, args: argparse.Namespace) -> int:
    """verify (exit 3 on a difference) or check-then-repair, of the
    roles this host runs (``flatnet_roles``)."""
    found = 0
    if "network" in ctx.settings.roles:
        found += _network_check(ctx, args)
    if "compute" in ctx.settings.roles:
        found += _firewall_check(ctx, args)
    if args.repair:
        return 0
    if found:
        ctx.out.write(f"{found} difference(s); run 'repair' to fix\n")
        return DIFFERS
    ctx.out.write("rules and addresses are as wanted\n")
    return 0


def _firewall_check(ctx: cli.Context, args: argparse.Namespace) -> int:
    """The compute role's instance chains and sets (prefix firewall:)."""
    rec = wiring.firewall(ctx.settings, ctx.db)
    found = rec.repair() if args.repair else rec.verify()
    for line in found:
        ctx.out.write(f"firewall: {line}\n")
    if args.repair and found:
        ctx.out.write(f"firewall: repaired {len(found)} difference(s)\n")
    return len(found)


def _network_check(ctx: cli.Context, args: argparse.Namespace) -> int:
    rules = wiring.host_rules(ctx.settings)
    networks = db_api.network_list(ctx.db)
    floating = rules_reconciler.host_floating(
        db_api.floating_list(ctx.db), ctx.settings.host
    )
    if args.repair:
        result = rules.repair(networks, floating)
        for line in result.differences:
            ctx.out.write(line + "\n")
        ctx.out.write(f"{result}\n")
        return len(result.differences)
    report = rules.verify(networks, floating)
    for line in report:
        ctx.out.write(line + "\n")
    return len(report)
