"""Operator defects found by a new user: floating delete, unreserve,
--wait timeouts, output, help texts, --once."""

from __future__ import annotations

import argparse

import pytest

from flatnet.cmd import manage, network
from flatnet.db import api as db_api
from flatnet.service import daemon


def test_floating_delete_range_skips_addresses_deleted_before(cli) -> None:
    cli.ok("floating", "create", "--ip-range", "192.0.2.0/29")
    cli.ok("floating", "delete", "--address", "192.0.2.3")
    out = cli.ok("floating", "delete", "--ip-range", "192.0.2.0/29")
    assert out == (
        "Deleted 5 floating IPs (1 address of 192.0.2.0/29 in no pool, "
        "skipped)\n"
    )
    assert cli.json("floating", "list") == []


def test_floating_delete_address_and_plural(cli) -> None:
    cli.ok("floating", "create", "--ip-range", "192.0.2.7")
    assert cli.ok("floating", "delete", "--address", "192.0.2.7") == (
        "Deleted 1 floating IP\n"
    )
    assert "Created 1 floating IP in" in cli.ok(
        "floating", "create", "--ip-range", "192.0.2.8"
    )


def test_floating_list_and_errors_name_the_instance(cli) -> None:
    cli.ok("instance", "create", "web1")
    cli.ok("instance", "create", "web2")
    cli.ok("floating", "create", "--ip-range", "192.0.2.7")
    cli.ok("floating", "associate", "--address", "192.0.2.7",
           "--instance", "web1")  # fmt: skip
    assert "web1" in cli.ok("floating", "list")
    rc, _, err = cli("floating", "associate", "--address", "192.0.2.7",
                     "--instance", "web2")  # fmt: skip
    assert rc == 2
    assert "is associated with web1" in err
    rc, _, err = cli("floating", "delete", "--address", "192.0.2.7")
    assert "is associated with web1" in err


@pytest.mark.parametrize("address", ["10.0.0.1", "10.0.0.0", "10.0.0.255"])
def test_unreserving_gateway_network_or_broadcast_is_refused(cli, address):
    rc, _, err = cli("fixed", "unreserve", "--address", address)
    assert rc == 2
    assert "stays reserved" in err
    rows = {f["address"]: f for f in cli.json("fixed", "list")}
    assert rows[address]["reserved"] is True


def test_fixed_list_summarises_and_filters(cli) -> None:
    cli.ok("instance", "create", "vm1")
    out = cli.ok("fixed", "list")
    assert out.splitlines()[0] == (
        "network private (10.0.0.0/24): 256 addresses, 1 allocated, "
        "0 leased, 3 reserved, 252 free"
    )
    rows = [line for line in out.splitlines() if line.startswith("10.")]
    assert len(rows) == 4  # network, gateway, vm1, broadcast
    assert len(cli.json("fixed", "list", "--all")) == 256
    only = cli.json("fixed", "list", "--all", "--address", "10.0.0.8/30")
    assert [f["address"] for f in only] == [
        f"10.0.0.{i}" for i in (8, 9, 10, 11)
    ]
    assert cli.json("fixed", "list", "--network", "private", "--all")


def test_wait_timeout_says_the_instance_stays_and_how_to_remove_it(cli):
    rc, out, err = cli(
        "instance", "create", "vm1", "--wait", "--timeout", "0.1"
    )
    assert rc == 1
    assert err.count("\n") == 1
    assert "instance vm1 was created and keeps 10.0.0.2" in err
    assert "flatnet-manage instance delete vm1" in err
    assert "10.0.0.2" in out  # the allocation is shown, too
    assert [i["hostname"] for i in cli.json("instance", "list")] == ["vm1"]


def test_tables_stay_aligned_with_long_values(cli) -> None:
    cli.ok("network", "create", "--label", "a-rather-long-network-label",
           "--fixed-range-v4", "10.1.0.0/24", "--bridge", "br101")  # fmt: skip
    lines = cli.ok("network", "list").splitlines()
    starts = {len(line.split("\t")[0]) for line in lines}
    assert len(starts) == 1
    label_col = [line.split("\t")[9] for line in lines]
    assert len({len(c) for c in label_col}) == 1  # padded alike


def _actions(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_flag_and_argument_has_help_text() -> None:
    missing = [
        f"{path} {'/'.join(a.option_strings) or a.dest}"
        for path, a in _actions(manage.build_parser(), "flatnet-manage")
        if not a.help
    ]
    assert missing == []
    for action in network.build_parser()._actions:
        assert action.help, action


def test_every_handler_resolves() -> None:
    """Handlers are named as strings (imported late): each must exist."""
    from flatnet.cmd import cli as cli_mod  # noqa: PLC0415

    seen = []
    for path, sub in _subparsers(manage.build_parser(), ""):
        handler = sub.get_default("handler")
        if handler is not None:
            assert callable(cli_mod.resolve(handler)), path
            seen.append(path)
    assert len(seen) >= 20, seen


def _subparsers(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, f"{path} {name}")


class _Rec:
    def __init__(self, component: str, live: bool) -> None:
        self.component = component
        self.live = live

    def prepare(self) -> None:
        pass

    def close(self) -> None:
        pass

    def poll(self) -> daemon.Polled:
        return daemon.Polled({"network:1": 1})

    def sync(self, keys):
        return {key: daemon.Outcome(self.live) for key in keys}


@pytest.mark.parametrize(("live", "rc"), [(True, 0), (False, 1)])
def test_once_exits_1_unless_every_network_is_live(cli, live, rc) -> None:
    db = db_api.Database(f"sqlite:///{cli.state}/flatnet.sqlite")
    service = daemon.Daemon(
        db, "node1", [_Rec("dhcp", True), _Rec("rules", live)]
    )
    assert network.run_once(service) == rc
    db.dispose()
