"""flatnet-manage verify | repair: the network host's rules and addresses.

Run on the network host (in its network namespace). ``verify`` prints
what differs between the database's wanted state and the live rules and
addresses (exit 3 if anything does). ``repair`` first checks what can be
checked without changing anything (the data, the devices that must
exist: a missing ``public_interface`` is a one-line error naming the
option, exit 2, nothing changed), then prints what differed and a
summary of what it repaired.
"""

from __future__ import annotations

import argparse

from flatnet.cmd import cli
from flatnet.db import api as db_api

#: verify's exit status when the live state differs from the wanted one
DIFFERS = 3


def _verify(ctx: cli.Context, args: argparse.Namespace) -> int:
    from flatnet.cmd import rules_config  # noqa: PLC0415
    from flatnet.service import rules_reconciler  # noqa: PLC0415

    rules = rules_config.build_host_rules(ctx.conf)
    networks = db_api.network_list(ctx.db)
    floating = rules_reconciler.host_floating(
        db_api.floating_list(ctx.db), ctx.conf.host
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


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    """Register ``verify`` and ``repair``."""
    verify = cli.leaf(
        groups,
        common,
        "verify",
        _verify,
        "show wanted vs actual host rules and addresses "
        f"(exit {DIFFERS} if they differ)",
    )
    verify.set_defaults(repair=False)
    repair = cli.leaf(
        groups,
        common,
        "repair",
        _verify,
        "check, then apply the wanted host rules and addresses; "
        "print what differed and what was repaired",
    )
    repair.set_defaults(repair=True)
