"""Start-up of every command: configuration errors, the default search,
database faults named by cause, per-command imports, the shims."""

from __future__ import annotations

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


def _imported(argv: list[str], cwd: pathlib.Path) -> set[str]:
    script = (
        "import sys\nfrom flatnet.cmd import manage\n"
        "rc = manage.main(sys.argv[1:])\n"
        "print('MODULES', ' '.join(sorted({m.split('.')[0] for m in "
        "sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True, text=True, check=False, cwd=cwd,
    )  # fmt: skip
    line = [x for x in out.stdout.splitlines() if x.startswith("MODULES")]
    assert line, out.stdout + out.stderr
    return set(line[0].split()[1:])


def test_light_commands_import_only_what_they_need(cli) -> None:
    conf = ["--config-file", str(cli.conf)]
    heavy = {"alembic", "pyroute2", "iptc", "libvirt", "eventlet"}
    help_mods = _imported(["--help"], cli.state)
    assert not help_mods & (heavy | {"sqlalchemy", "oslo_config", "netaddr"})
    listing = _imported([*conf, "network", "list"], cli.state)
    assert "sqlalchemy" in listing  # the test can see imports at all
    assert not listing & heavy, listing & heavy
    create = _imported([*conf, "instance", "create", "vmx"], cli.state)
    assert not create & heavy, create & heavy


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
