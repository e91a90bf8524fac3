"""flatnet-manage verify | repair: the parsers (light; the handler is in
:mod:`flatnet.cmd.rules_commands`).

Run on the network host (in its network namespace). ``verify`` prints
what differs between the database's wanted state and the live rules and
addresses (exit 3 if anything does). ``repair`` first checks what can be
checked without changing anything (the data, the devices that must
exist: a missing ``public_interface`` is a one-line error naming the
option, exit 2, nothing changed), then prints what differed and a
summary of what it repaired.
"""

from __future__ import annotations

from flatnet.cmd import cli

#: verify's exit status when the live state differs from the wanted one
DIFFERS = 3
#: The top-level words this module registers, with their help.
HELP = {
    "verify": "show wanted vs actual host rules and addresses "
    f"(exit {DIFFERS} if they differ)",
    "repair": "check, then apply the wanted host rules and addresses; "
    "print what differed and what was repaired",
}


def add(groups: cli.Subparsers, common: cli.Parser) -> None:
    """Register ``verify`` and ``repair``."""
    verify = cli.leaf(
        groups,
        common,
        "verify",
        "rules_commands:rules_check",
        HELP["verify"],
    )
    verify.set_defaults(repair=False)
    repair = cli.leaf(
        groups,
        common,
        "repair",
        "rules_commands:rules_check",
        HELP["repair"],
    )
    repair.set_defaults(repair=True)
