"""flatnet-manage in-process against a temporary SQLite database."""

from __future__ import annotations

import pytest

from flatnet.cmd import manage
from tests.unit.cli_harness import Cli


def test_db_sync_creates_the_database_under_state_path(tmp_path, capsys):
    c = Cli(tmp_path, capsys)
    assert c.ok("db", "sync") == ""
    assert (c.state / "flatnet.sqlite").exists()
    assert c.ok("db", "version").strip() == "0006"
    assert c.ok("db", "sync") == ""  # idempotent


def test_network_list_table_has_nova_columns(cli) -> None:
    lines = cli.ok("network", "list").splitlines()
    header = [h.strip() for h in lines[0].split("\t")]
    assert header == [
        "id",
        "IPv4",
        "IPv6",
        "start address",
        "DNS1",
        "DNS2",
        "VlanID",
        "project",
        "uuid",
        "label",
        "bridge",
    ]
    row = [c.strip() for c in lines[1].split("\t")]
    assert row[:6] == [
        "1",
        "10.0.0.0/24",
        "None",
        "10.0.0.2",
        "8.8.4.4",
        "None",
    ]
    assert row[-2:] == ["private", "br100"]


def test_network_list_json(cli) -> None:
    [net] = cli.json("network", "list")
    assert net["cidr"] == "10.0.0.0/24"
    assert net["gateway"] == "10.0.0.1"
    assert net["bridge_interface"] == "eth2"


def test_underscore_aliases_and_config_defaults(cli) -> None:
    cli.ok(
        "network",
        "create",
        "--label",
        "two",
        "--fixed_range_v4",
        "10.0.1.0/24",
        "--bridge",
        "br101",
        "--bridge_interface",
        "eth3",
    )
    nets = {n["label"]: n for n in cli.json("network", "list")}
    assert nets["two"]["bridge_interface"] == "eth3"
    assert nets["two"]["dns1"] == "8.8.4.4"  # flat_network_dns default


def test_instance_create_prints_network_info(cli) -> None:
    info = cli.json("instance", "create", "vm1")
    assert info["instance"] == "vm1"
    [vif] = info["interfaces"]
    assert vif["address"] == "10.0.0.2"
    assert vif["mac"].startswith("fa:16:3e:")
    assert vif["gateway"] == "10.0.0.1"
    assert vif["bridge"] == "br100"
    assert vif["dns"] == ["8.8.4.4"]
    table = cli.ok("instance", "create", "vm2", "--mac", "fa:16:3e:00:00:02")
    assert "10.0.0.3" in table
    assert "fa:16:3e:00:00:02" in table
    shown = cli.json("instance", "show", "vm2")
    assert shown["interfaces"][0]["address"] == "10.0.0.3"
    assert [i["hostname"] for i in cli.json("instance", "list")] == [
        "vm1",
        "vm2",
    ]


def test_instance_delete_frees_a_never_leased_address(cli) -> None:
    cli.ok("instance", "create", "vm1")
    assert "10.0.0.2" in cli.ok("instance", "delete", "vm1")
    assert cli.json("instance", "list") == []
    row = [
        f
        for f in cli.json("fixed", "list", "--all")
        if f["address"] == "10.0.0.2"
    ]
    assert row[0]["instance_uuid"] is None
    assert not row[0]["allocated"]


def test_fixed_reserve_and_unreserve(cli) -> None:
    cli.ok("fixed", "reserve", "--address", "10.0.0.2")
    assert (
        cli.json("instance", "create", "vm1")["interfaces"][0]["address"]
        == "10.0.0.3"
    )
    cli.ok("fixed", "unreserve", "--address", "10.0.0.2")
    fixed = {f["address"]: f for f in cli.json("fixed", "list", "--all")}
    assert fixed["10.0.0.2"]["reserved"] is False
    assert fixed["10.0.0.3"]["hostname"] == "vm1"


def test_fixed_list_host_filter(cli) -> None:
    cli.ok("instance", "create", "vm1", "--host", "node7")
    cli.ok("instance", "create", "vm2", "--host", "node8")
    out = cli.json("fixed", "list", "--host", "node7")
    assert [f["hostname"] for f in out] == ["vm1"]


def test_network_delete(cli) -> None:
    cli.ok("instance", "create", "vm1")
    rc, _, err = cli("network", "delete", "private")
    assert rc == 2
    assert "still has allocated" in err
    cli.ok("instance", "delete", "vm1")
    cli.ok("network", "delete", "private")
    assert cli.ok("network", "list") == "No networks found\n"


def test_wait_without_a_daemon_fails_with_not_ready(cli) -> None:
    rc, _, err = cli("instance", "create", "vm1", "--wait", "--timeout", "0.2")
    assert rc == 1
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "ever reported" in err


BAD = [
    ("network", "create", "--label", "x", "--fixed-range-v4", "10.9.0.0/31"),
    ("network", "create", "--label", "x", "--fixed-range-v4", "nonsense"),
    (
        "network",
        "create",
        "--label",
        "x",
        "--fixed-range-v4",
        "10.0.0.0/25",
        "--bridge",
        "br9",
    ),
    (
        "network",
        "create",
        "--label",
        "private",
        "--fixed-range-v4",
        "10.1.0.0/24",
        "--bridge",
        "br9",
    ),
    (
        "network",
        "create",
        "--label",
        "x",
        "--fixed-range-v4",
        "10.1.0.0/24",
        "--bridge",
        "br100",
    ),
    (
        "network",
        "create",
        "--label",
        "x",
        "--fixed-range-v4",
        "10.1.0.0/24",
        "--bridge",
        "br\nx",
    ),
    (
        "network",
        "create",
        "--label",
        "x",
        "--fixed-range-v4",
        "10.1.0.0/24",
        "--gateway",
        "10.2.0.1",
    ),
    (
        "network",
        "create",
        "--label",
        "x\ny",
        "--fixed-range-v4",
        "10.1.0.0/24",
    ),
    (
        "network",
        "create",
        "--label",
        "x",
        "--fixed-range-v4",
        "10.1.0.0/24",
        "--mtu",
        "12",
    ),
    (
        "network",
        "create",
        "--label",
        "x",
        "--fixed-range-v4",
        "10.1.0.0/24",
        "--mtu",
        "abc",
    ),
    ("network", "create", "--label", "x"),
    ("network", "delete", "nosuch"),
    ("instance", "create", "vm 1"),
    ("instance", "create", "vm\n1"),
    ("instance", "create", "vm,1"),
    ("instance", "create", "vm#1"),
    ("instance", "create", "vé"),
    ("instance", "create", "x" * 64),
    ("instance", "create", "vm1", "--mac", "ff:ff:ff:ff:ff:ff"),
    ("instance", "create", "vm1", "--mac", "01:00:5e:00:00:01"),
    ("instance", "create", "vm1", "--mac", "00:00:00:00:00:00"),
    ("instance", "create", "vm1", "--mac", "zz"),
    ("instance", "create", "vm1", "--network", "nosuch"),
    ("instance", "show", "nosuch"),
    ("instance", "delete", "nosuch"),
    ("fixed", "reserve", "--address", "10.0.9.9"),
    ("fixed", "reserve", "--address", "not-an-ip"),
    ("fixed", "reserve"),
    ("nosuch",),
    ("network",),
    ("instance", "create"),
]


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a)[:60])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(cli, argv):
    cli.ok("instance", "create", "vm0")
    before = cli.dump()
    rc, out, err = cli(*argv)
    assert rc == 2, (out, err)
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert cli.dump() == before


def test_mac_already_taken_exits_2(cli) -> None:
    cli.ok("instance", "create", "vm1", "--mac", "fa:16:3e:00:00:09")
    before = cli.dump()
    rc, _, err = cli("instance", "create", "vm2", "--mac", "fa:16:3e:00:00:09")
    assert rc == 2
    assert "already in use" in err
    rc, _, err = cli("instance", "create", "vm1")
    assert rc == 2
    assert "already exists" in err
    assert cli.dump() == before


def test_exhaustion_names_the_network(tmp_path, capsys) -> None:
    c = Cli(tmp_path, capsys)
    c.ok("db", "sync")
    c.ok(
        "network",
        "create",
        "--label",
        "tiny",
        "--fixed-range-v4",
        "10.5.0.0/30",
    )
    c.ok("instance", "create", "a")
    rc, _, err = c("instance", "create", "b")
    assert rc == 2
    assert "tiny" in err
    assert "No fixed IP" in err


def test_unreadable_config_exits_2(tmp_path, capsys) -> None:
    rc = manage.main(
        ["--config-file", str(tmp_path / "nope.conf"), "db", "sync"]
    )
    _, err = capsys.readouterr()
    assert rc == 2
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_unexpected_errors_exit_1_and_log_the_traceback_with_debug(
    tmp_path, capsys
) -> None:
    c = Cli(tmp_path, capsys)  # no db sync: the tables are missing
    rc, _, err = c("network", "list")
    assert rc == 1
    assert err.count("\n") == 1
    assert "db sync" in err
    rc, _, err = c("--debug", "network", "list")
    assert rc == 1
    assert "Traceback" in err


def test_help_exits_0(capsys) -> None:
    assert manage.main(["--help"]) == 0
    assert "network" in capsys.readouterr().out
