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
    """verify (exit 3 on a difference) or check-then-repair."""
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
        return 0
    report = rules.verify(networks, floating)
    for line in report:
        ctx.out.write(line + "\n")
    if report:
        ctx.out.write(f"{len(report)} difference(s); run 'repair' to fix\n")
        return DIFFERS
    ctx.out.write("rules and addresses are as wanted\n")
    return 0
