"""Start-up of every command: configuration errors, the default search,
database faults named by cause, per-command imports, the shims."""

from __future__ import annotations

import gc
import json
import os
import pathlib
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from flatnet.cmd import dhcpbridge, manage, network
from tests.unit.cli_harness import Cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
BAD_LINE = "sync_interval = fast\n"


def _bad_config(cli: Cli) -> str:
    text = cli.conf.read_text().replace(
        "[DEFAULT]\n", "[DEFAULT]\n" + BAD_LINE
    )
    cli.conf.write_text(text)
    return str(cli.conf)


def _one_error_line(err: str, *words: str) -> None:
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ("db", "sync"),
        ("db", "version"),
        ("network", "list"),
        ("instance", "create", "vm9"),
        ("fixed", "list"),
        ("floating", "list"),
        ("verify",),
        ("config", "show"),
    ],
    ids=" ".join,
)
def test_bad_value_is_exit_2_for_every_manage_command(cli, argv) -> None:
    before = cli.dump()
    path = _bad_config(cli)
    rc, _, err = cli(*argv)
    assert rc == 2
    _one_error_line(err, path, "sync_interval", "'fast'")
    assert cli.dump() == before


def test_bad_value_is_exit_2_for_flatnet_network(cli, capsys) -> None:
    path = _bad_config(cli)
    capsys.readouterr()
    assert network.main(["--config-file", path, "--once"]) == 2
    _one_error_line(capsys.readouterr().err, path, "sync_interval")


def test_bad_value_is_exit_2_for_the_python_hook(cli, capsys) -> None:
    path = _bad_config(cli)
    env = {"CONFIG_FILE": json.dumps([path]), "NETWORK_ID": "1"}
    capsys.readouterr()
    assert dhcpbridge.main_with(["init"], env) == 2
    err = capsys.readouterr().err
    assert "sync_interval" in err
    assert path in err
    assert err.count("\n") == 1


def test_without_a_config_file_nothing_is_created(tmp_path, capsys) -> None:
    """No --config-file and no /etc/flatnet/flatnet.conf: an error, not
    a database under /var/lib/flatnet (skipped if this host has one)."""
    if os.path.exists("/etc/flatnet/flatnet.conf"):
        pytest.skip("this host has /etc/flatnet/flatnet.conf")
    assert manage.main(["db", "sync"]) == 2
    _one_error_line(capsys.readouterr().err, "--config-file")


def test_only_db_sync_creates_the_database(tmp_path, capsys) -> None:
    c = Cli(tmp_path, capsys)
    rc, _, err = c("network", "list")
    assert rc == 1
    _one_error_line(err, "does not exist", "db sync", str(c.conf))
    assert not (c.state / "flatnet.sqlite").exists()
    c.ok("db", "sync")
    db = c.state / "flatnet.sqlite"
    c.ok("network", "list")  # WAL files exist while in use; check modes
    for path in (db, *c.state.glob("flatnet.sqlite-*")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_db_sync_tightens_an_old_world_readable_file(tmp_path, capsys):
    c = Cli(tmp_path, capsys)
    c.ok("db", "sync")
    db = c.state / "flatnet.sqlite"
    db.chmod(0o644)
    c.ok("db", "sync")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_nova_database_is_refused(tmp_path, capsys) -> None:
    c = Cli(tmp_path, capsys)
    c.state.mkdir()
    nova = c.state / "flatnet.sqlite"
    with sqlite3.connect(nova) as conn:
        conn.execute("CREATE TABLE compute_nodes (id INTEGER)")
        conn.execute("CREATE TABLE instances (id INTEGER)")
    before = nova.read_bytes()
    for argv in (("db", "sync"), ("network", "list")):
        rc, _, err = c(*argv)
        assert rc == 2
        _one_error_line(err, "nova's schema", "compute_nodes", str(c.conf))
    assert nova.read_bytes() == before


def test_missing_driver_names_the_extra(tmp_path, capsys) -> None:
    c = Cli(tmp_path, capsys)
    with c.conf.open("a") as f:
        f.write("[database]\nconnection = mysql+nosuchdriver://u:p@h/d\n")
    rc, _, err = c("network", "list")
    assert rc == 2
    _one_error_line(err, "[database] connection")


def test_locked_database_names_who_holds_it(cli) -> None:
    with cli.conf.open("a") as f:
        f.write("[database]\nbusy_timeout = 0.2\n")
    db = cli.state / "flatnet.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE')\nprint('locked', flush=True)\n"
         "time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        rc, _, err = cli("instance", "create", "vm7")
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.communicate()
    assert rc == 1
    _one_error_line(err, "is locked", f"pid {holder.pid}", "sqlite3")
    assert "db sync" not in err


def test_config_show_says_which_file_set_what(cli) -> None:
    out = cli.ok("config", "show")
    assert f"configuration: {cli.conf} (given)" in out
    data = cli.json("config", "show")
    rows = {(o["group"], o["name"]): o for o in data["options"]}
    assert rows[("DEFAULT", "host")] == {
        "group": "DEFAULT",
        "name": "host",
        "value": "node1",
        "origin": str(cli.conf),
    }
    assert rows[("DEFAULT", "sync_interval")]["origin"] == "default"


def _imported(argv: list[str], cwd: pathlib.Path, code: str = "") -> set[str]:
    """Every module a fresh ``flatnet-manage argv`` (or ``code``) loaded."""
    script = code or (
        "import sys\nfrom flatnet.cmd import manage\n"
        "rc = manage.main(sys.argv[1:])\n"
    )
    script += "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True, text=True, check=False, cwd=cwd,
    )  # fmt: skip
    line = [x for x in out.stdout.splitlines() if x.startswith("MODULES")]
    assert line, out.stdout + out.stderr
    return set(line[0].split()[1:])


def _found(modules: set[str], banned: set[str]) -> set[str]:
    """The modules that are, or are inside, one of ``banned``."""
    return {
        m for m in modules for b in banned if m == b or m.startswith(b + ".")
    }


#: Never loaded by a flatnet-manage command that reads or changes the
#: database: host executors and their libraries, the planners of the
#: host's state, the daemon's services, migrations, and the metadata
#: service (flatnet's asyncio user).
NOT_FOR_THE_CLI = {
    "alembic", "pyroute2", "iptc", "libvirt", "eventlet",
    "flatnet.linux", "flatnet.migrate", "flatnet.db.migration",
    "flatnet.plan.iptables.builder", "flatnet.plan.iptables.model",
    "flatnet.plan.iptables.delta", "flatnet.plan.iptables.grammar",
    "flatnet.plan.iptables.applied", "flatnet.plan.iptables.diff",
    "flatnet.plan.firewall", "flatnet.plan.host_rules",
    "flatnet.plan.dnsmasq", "flatnet.plan.metadata", "flatnet.plan.ipset",
    "flatnet.service.daemon", "flatnet.service.dhcp",
    "flatnet.service.dhcp_keeper", "flatnet.service.leases",
    "flatnet.service.host_rules", "flatnet.service.firewall",
    "flatnet.service.rules_reconciler", "flatnet.service.metadata_server",
    "flatnet.service.metadata_cache", "flatnet.service.metadata_http",
}  # fmt: skip
#: db.api's query modules and the manager: a read needs one of them.
QUERIES = {
    "flatnet.db.allocation", "flatnet.db.fixed", "flatnet.db.floating",
    "flatnet.db.leases", "flatnet.db.dhcp_reads", "flatnet.db.metadata",
    "flatnet.db.secgroups",
    "flatnet.db.secgroup_members", "flatnet.db.secgroup_rules",
    "flatnet.db.firewall_state", "flatnet.db.firewall_read",
    "flatnet.service.manager",
}  # fmt: skip
NOT_FOR_CREATE = {
    "flatnet.db.fixed", "flatnet.db.floating", "flatnet.db.leases",
    "flatnet.db.dhcp_reads",
    "flatnet.db.metadata", "flatnet.db.secgroup_rules",
}  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "needed", "banned"),
    [
        (["network", "list"], "flatnet.db.networks", QUERIES),
        (["fixed", "list"], "flatnet.db.fixed",
         QUERIES - {"flatnet.db.fixed"}),
        (["secgroup", "list"], "flatnet.db.secgroups",
         QUERIES - {"flatnet.db.secgroups"}),
        (["instance", "create", "vmx"], "flatnet.db.allocation",
         NOT_FOR_CREATE),
        (["instance", "create", "vmy", "--wait", "--timeout", "0.1"],
         "flatnet.service.manager", NOT_FOR_CREATE),
    ],
    ids=["network-list", "fixed-list", "secgroup-list", "instance-create",
         "instance-create-wait"],
)  # fmt: skip
def test_each_command_imports_only_what_it_needs(
    cli, argv, needed, banned
) -> None:
    """A heavy import re-added on one of these paths fails here (the
    start-up cost of flatnet-manage: doc/benchmarks.md)."""
    modules = _imported(["--config-file", str(cli.conf), *argv], cli.state)
    assert needed in modules  # the command ran its query
    assert not _found(modules, NOT_FOR_THE_CLI | banned)


@pytest.mark.parametrize(
    "argv", [["--help"], ["network", "--help"], ["nosuch"]], ids=" ".join
)
def test_help_imports_no_configuration_or_database(tmp_path, argv) -> None:
    modules = {m.split(".")[0] for m in _imported(argv, tmp_path)}
    assert "flatnet" in modules
    assert not modules & {"sqlalchemy", "oslo_config", "netaddr"}


def test_building_settings_loads_no_planner_or_service(cli) -> None:
    """Every command builds Settings: of plan/ and service/ only their
    light settings modules load (SQLAlchemy imports asyncio itself, so
    the check is on flatnet's own asyncio users, the metadata modules)."""
    code = (
        "import sys\nfrom flatnet import settings\n"
        f"settings.load([{str(cli.conf)!r}])\n"
    )
    modules = _imported([], cli.state, code)
    assert "flatnet.settings.sections" in modules
    allowed = {
        "flatnet.plan", "flatnet.plan.settings", "flatnet.plan.iptables",
        "flatnet.plan.iptables.names", "flatnet.service",
        "flatnet.service.settings",
    }  # fmt: skip
    loaded = _found(modules, {"flatnet.plan", "flatnet.service"})
    assert loaded <= allowed, loaded - allowed
    assert not _found(modules, {"flatnet.db", "flatnet.wiring"})


@pytest.mark.parametrize(
    "argv",
    [
        ["network", "list", "--format", "json"],
        ["instance", "create", "vm1", "--wait", "--timeout", "3"],
        ["--debug", "--config-file", "/x", "fixed", "list", "--all"],
        ["--config-file=/x", "verify"],
        ["repair"],
        ["migration", "report", "--preserve"],
        ["--config-file", "network", "secgroup", "list"],
    ],
    ids=" ".join,
)
def test_one_word_parser_parses_as_the_full_one(argv) -> None:
    """flatnet-manage builds only the typed word's parser in full."""
    assert manage.parse_args(argv) == manage.build_parser().parse_args(argv)


@pytest.mark.parametrize("word", ["", "network", "repair", "import"])
def test_top_level_help_is_the_full_parsers(word) -> None:
    full = manage.build_parser().format_help()
    assert manage.build_parser(only=word).format_help() == full


def test_db_api_names_resolve_on_first_use() -> None:
    """db.api loads its query modules when a name is first used: every
    public name still resolves, an unknown one is an AttributeError."""
    from flatnet.db import api as db_api  # noqa: PLC0415

    for name in db_api.__all__:
        assert getattr(db_api, name) is not None, name
    with pytest.raises(AttributeError):
        db_api.no_such_query  # noqa: B018


@pytest.mark.parametrize(
    "shim", ["flatnet-manage", "flatnet-network", "flatnet-metadata"]
)
def test_bin_shims_work_from_a_checkout(tmp_path, shim) -> None:
    out = subprocess.run(
        [str(ROOT / "bin" / shim), "--help"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "--config-file" in out.stdout


def test_python_hook_never_creates_a_database(tmp_path, capsys) -> None:
    """The hook given a config without [database] used to create
    $state_path/flatnet.sqlite; now it refuses: no [database] connection."""
    conf = tmp_path / "hook.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}/state\n")
    env = {"CONFIG_FILE": json.dumps([str(conf)]), "NETWORK_ID": "1"}
    assert dhcpbridge.main_with(["init"], env) == 1
    assert "no [database] connection" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(("private", "mode"), [(True, 0o700), (False, 0o755)])
def test_database_directory_mode(tmp_path, private, mode) -> None:
    from flatnet.db import api as db_api  # noqa: PLC0415

    db = db_api.Database(
        f"sqlite:///{tmp_path}/db/flatnet.sqlite", private_directory=private
    )
    db_api.sync(db)
    db.dispose()
    assert stat.S_IMODE((tmp_path / "db").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "db/flatnet.sqlite").stat().st_mode) == (
        0o600
    )


def test_collector_off_while_starting_and_back_after(cli, monkeypatch):
    """The cyclic GC is off during start-up (settings), on (with the
    start-up objects frozen) while the handler runs, restored after."""
    from flatnet.cmd import network_commands, startup  # noqa: PLC0415

    seen: dict[str, tuple[bool, int]] = {}
    load, listing = startup.load_settings, network_commands.network_list

    def spy(name, func):
        def wrapped(*args, **kwargs):
            seen[name] = (gc.isenabled(), gc.get_freeze_count())
            return func(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(startup, "load_settings", spy("settings", load))
    monkeypatch.setattr(
        network_commands, "network_list", spy("handler", listing)
    )
    assert gc.isenabled()
    cli.ok("network", "list")
    assert seen["settings"][0] is False
    assert seen["handler"][0] is True
    assert seen["handler"][1] > 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
