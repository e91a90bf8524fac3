"""cmd/dhcpbridge.py: the Python hook, in-process and as the console
script, with valid and hostile argv/env."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from flatnet.cmd import dhcpbridge
from flatnet.db import api as db_api
from tests.fakes_dnsmasq import new_db, new_instance, new_network

MAC = "fa:16:3e:00:00:01"
HOOK = os.path.join(os.path.dirname(sys.executable), "flatnet-dhcpbridge")


@pytest.fixture
def setup(tmp_path):
    db = new_db(tmp_path)
    network = new_network(db)
    new_instance(db, network, "vm1", MAC)
    conf = tmp_path / "flatnet.conf"
    conf.write_text(
        f"[DEFAULT]\nnetworks_path = {tmp_path}/networks\n"
        f"[database]\nconnection = sqlite:///{tmp_path}/flatnet.sqlite\n"
    )
    (tmp_path / "networks").mkdir()
    env = {
        "CONFIG_FILE": json.dumps([str(conf)]),
        "NETWORK_ID": str(network.id),
        "PATH": "/usr/bin:/bin",
    }
    return db, env, tmp_path / "networks" / "nova-br100.events"


def test_event_goes_to_flatnet_events_journal(setup, tmp_path):
    _, env, _ = setup
    journal = tmp_path / "j.events"
    env = {**env, "FLATNET_EVENTS": str(journal)}
    assert dhcpbridge.run(["add", MAC, "10.210.0.2", "vm1"], env) == 0
    assert dhcpbridge.run(["old", MAC.upper(), "10.210.0.2"], env) == 0
    assert journal.read_text() == (
        f"\nadd {MAC} 10.210.0.2\n\nold {MAC} 10.210.0.2\n"
    )
    assert journal.stat().st_mode & 0o777 == 0o600


def test_without_flatnet_events_the_journal_comes_from_the_db(setup):
    _, env, journal = setup
    assert dhcpbridge.run(["del", MAC, "10.210.0.2"], env) == 0
    assert journal.read_text() == f"\ndel {MAC} 10.210.0.2\n"


def test_init_prints_leases_of_the_network(setup):
    db, env, _ = setup
    db_api.lease_fixed_ip(
        db,
        db_api.network_info(db, db_api.instance_get(db, "vm1").uuid)[
            0
        ].address,
        None,
    )
    done = subprocess.run(
        [HOOK, "init"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    expiry, mac, ip, name, star = done.stdout.split()
    assert (mac, ip, name, star) == (MAC, "10.210.0.2", "vm1", "*")
    assert int(expiry) > 86400


def test_init_without_network_id_fails_like_nova(setup):
    _, env, _ = setup
    env = {k: v for k, v in env.items() if k != "NETWORK_ID"}
    assert dhcpbridge.main_with(["init"], env) == 1


@pytest.mark.parametrize(
    ("args", "env_extra"),
    [
        (["add", "fa:16:3e:00:00:01\nadd", "10.0.0.1"], {}),
        (["add", MAC, "10.0.0.1\n"], {}),
        (["add", MAC, "999.0.0.1"], {}),
        (["add", MAC, "x" * 100000, "h" * 100000], {}),
        (["add"], {}),
        (["old", MAC, "10.0.0.1"], {"CONFIG_FILE": "not json"}),
        (["del", MAC, "10.0.0.1"], {"NETWORK_ID": "1; rm -rf /"}),
        (["tftp", "0", "10.0.0.1", "/f"], {}),
        (["\udcff\udcfe", MAC, "10.0.0.1"], {}),
    ],
)
def test_hostile_input_never_crashes_or_writes(setup, args, env_extra):
    _, env, journal = setup
    assert dhcpbridge.main_with(args, {**env, **env_extra}) == 0
    assert not journal.exists()


def test_console_script_exits_zero_on_garbage(setup):
    _, env, journal = setup
    done = subprocess.run(
        [HOOK, "add", "a\nb", "c d", "e\x01f"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0
    assert "ignoring invalid add" in done.stderr
    assert not journal.exists()


def test_unwritable_journal_counts_the_loss(setup, tmp_path):
    _, env, _ = setup
    events = tmp_path / "gone" / "nova-br100.events"
    env = {**env, "FLATNET_EVENTS": str(events)}
    assert dhcpbridge.main_with(["add", MAC, "10.0.0.1"], env) == 1
    assert not events.parent.exists()  # nothing created anywhere
    events.parent.mkdir()
    (events.parent / "nova-br100.events").mkdir()  # EISDIR on append
    for _ in range(2):
        assert dhcpbridge.main_with(["add", MAC, "10.0.0.1"], env) == 1
    lost = events.parent / "nova-br100.lost"
    assert lost.read_text().split() == ["2"]
    assert lost.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("action", ["init", "add"])
def test_without_database_section_refuses_and_creates_nothing(
    tmp_path, action, capsys
):
    state = tmp_path / "state"
    conf = tmp_path / "flatnet.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {state}\n")
    env = {"CONFIG_FILE": json.dumps([str(conf)]), "NETWORK_ID": "1"}
    rc = dhcpbridge.main_with([action, MAC, "10.0.0.1"], env)
    assert rc == (1 if action == "init" else 0)
    assert "no [database] connection" in capsys.readouterr().err
    assert not state.exists()


def test_missing_sqlite_file_is_refused_not_created(tmp_path, capsys):
    db_path = tmp_path / "none.sqlite"
    conf = tmp_path / "flatnet.conf"
    conf.write_text(f"[database]\nconnection = sqlite:///{db_path}\n")
    env = {"CONFIG_FILE": json.dumps([str(conf)]), "NETWORK_ID": "1"}
    assert dhcpbridge.main_with(["init"], env) == 1
    err = capsys.readouterr().err
    assert f"database {db_path} has no flatnet schema" in err
    assert "the file does not exist" in err
    assert err.count("\n") == 1
    assert not db_path.exists()
