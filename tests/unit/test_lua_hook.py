"""plan/lease_hook.lua (dnsmasq --dhcp-luascript) run in real Lua 5.4
(the library dnsmasq-base-lua links), called the way dnsmasq's helper
calls it: same journal records as the sh hook, no error ever escapes
(dnsmasq's lua_call would kill its helper), losses counted in place."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess

import netaddr
import pytest

from flatnet.plan import dhcp_hook
from flatnet.plan import dnsmasq as plan
from tests.builders import flat_network
from tests.lua_harness import LuaError, LuaHook

MAC = "fa:16:3e:00:00:01"
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def lua(tmp_path, monkeypatch):
    """Load the shipped script with FLATNET_EVENTS set; returns a
    factory so a test can load it under another environment."""
    script = tmp_path / dhcp_hook.LUA_SCRIPT_NAME
    script.write_text(dhcp_hook.lua_script())
    loaded: list[LuaHook] = []

    def load(events: str | None = str(tmp_path / "nova-br100.events")):
        if events is None:
            monkeypatch.delenv("FLATNET_EVENTS", raising=False)
        else:
            monkeypatch.setenv("FLATNET_EVENTS", events)
        hook = LuaHook(str(script))
        loaded.append(hook)
        return hook

    yield load
    for hook in loaded:
        hook.close()


def _sh(tmp_path: pathlib.Path, *args: str) -> None:
    script = tmp_path / "sh-hook"
    if not script.exists():
        script.write_text(dhcp_hook.hook_script("/bin/false"))
        script.chmod(0o755)
    env = {"PATH": "", "FLATNET_EVENTS": str(tmp_path / "sh.events")}
    subprocess.run([str(script), *args], env=env, timeout=10, check=False)


def test_package_data_is_the_file_in_the_tree():
    shipped = ROOT / "flatnet" / "plan" / dhcp_hook.LUA_RESOURCE
    assert dhcp_hook.lua_script() == shipped.read_text()
    assert '"lease_hook.lua"' in (ROOT / "setup.py").read_text()


def test_records_are_byte_identical_to_the_sh_hook(lua, tmp_path):
    hook = lua()
    events = [
        ("add", MAC, "10.0.0.3"),
        ("old", MAC.upper(), "10.0.0.3"),
        ("del", MAC, "255.255.255.255"),
        ("add", MAC, "0.0.0.0"),
    ]
    for action, mac, ip in events:
        hook.lease(action, mac_address=mac, ip_address=ip, hostname="a\nb")
        _sh(tmp_path, action, mac, ip, "a\nb")
    lua_text = (tmp_path / "nova-br100.events").read_bytes()
    assert lua_text == (tmp_path / "sh.events").read_bytes()
    assert lua_text.count(b"\n\n") == 3
    assert not (tmp_path / "nova-br100.hookerr").exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"mac_address": MAC + "\nadd", "ip_address": "10.0.0.3"},
        {"mac_address": MAC, "ip_address": "10.0.0.3\ndel x y"},
        {"mac_address": MAC, "ip_address": "10.0.0.3 x"},
        {"mac_address": MAC, "ip_address": "1.2.3"},
        {"mac_address": MAC, "ip_address": "1.2.3.4.5"},
        {"mac_address": MAC, "ip_address": "10.0.0.256"},
        {"mac_address": MAC, "ip_address": "10.0.01.3"},
        {"mac_address": MAC, "ip_address": "1111111111111111.1.1.1"},
        {"mac_address": MAC, "ip_address": "fe80::1"},
        {"mac_address": "01-" + MAC, "ip_address": "10.0.0.3"},
        {"mac_address": "x" * 100000, "ip_address": "10.0.0.3"},
        {"mac_address": b"\xff\xfe\x00\n", "ip_address": "10.0.0.3"},
        {"ip_address": "10.0.0.3"},
        {"mac_address": MAC},
        {},
    ],
)
def test_bad_input_is_reported_never_raised(lua, tmp_path, fields):
    lua().lease("add", **fields)  # LuaError here = a dead dnsmasq helper
    assert not (tmp_path / "nova-br100.events").exists()
    errors = (tmp_path / "nova-br100.hookerr").read_bytes()
    assert errors.count(b"\n") == 1
    assert len(errors) < 400
    assert all(32 <= byte < 127 for byte in errors[:-1])
    assert b"not an Ethernet MAC and IPv4 address" in errors


def test_other_actions_are_ignored(lua, tmp_path):
    hook = lua()
    for action in ("init", "tftp", "arp", "", "add\n"):
        hook.lease(action, mac_address=MAC, ip_address="10.0.0.3")
    assert not (tmp_path / "nova-br100.events").exists()
    assert not (tmp_path / "nova-br100.hookerr").exists()


@pytest.mark.parametrize("events", [None, "", "relative.events", "/x.log"])
def test_missing_or_odd_journal_env_writes_nothing(lua, tmp_path, events):
    os.chdir(tmp_path)
    lua(events).lease("add", mac_address=MAC, ip_address="10.0.0.3")
    assert os.listdir(tmp_path) == [dhcp_hook.LUA_SCRIPT_NAME]


def test_journal_is_opened_per_event_and_follows_rotation(lua, tmp_path):
    hook = lua()
    path = tmp_path / "nova-br100.events"
    hook.lease("add", mac_address=MAC, ip_address="10.0.0.3")
    path.rename(str(path) + ".old")
    hook.lease("old", mac_address=MAC, ip_address="10.0.0.3")
    assert path.read_text() == f"\nold {MAC} 10.0.0.3\n"
    assert pathlib.Path(str(path) + ".old").read_text().startswith("\nadd")


def test_unwritable_journal_counts_losses_in_place_like_sh(lua, tmp_path):
    (tmp_path / "nova-br100.events").mkdir()  # every open fails
    (tmp_path / "sh.events").mkdir()
    lost = tmp_path / "nova-br100.lost"
    lost.write_text(f"{7:12d}\n{4:12d}\n")
    (tmp_path / "sh.lost").write_text(f"{7:12d}\n{4:12d}\n")
    hook = lua()
    for _ in range(3):
        hook.lease("add", mac_address=MAC, ip_address="10.0.0.3")
        _sh(tmp_path, "add", MAC, "10.0.0.3")
    assert lost.read_text() == f"{10:12d}\n{4:12d}\n"  # line 2 untouched
    assert (tmp_path / "sh.lost").read_text() == lost.read_text()


def test_full_disk_at_close_is_counted(lua, tmp_path):
    """/dev/full: open succeeds, the one write(2) at close fails."""
    (tmp_path / "nova-br100.events").symlink_to("/dev/full")
    lua().lease("add", mac_address=MAC, ip_address="10.0.0.3")
    lost = (tmp_path / "nova-br100.lost").read_text()
    assert lost == f"{1:12d}\n"


def test_error_file_is_bounded(lua, tmp_path):
    hook = lua()
    for _ in range(400):
        hook.lease("add", mac_address="y" * 250, ip_address="1")
    size = (tmp_path / "nova-br100.hookerr").stat().st_size
    assert 65536 <= size < 65536 + 400


def test_a_raising_script_is_what_the_harness_catches(tmp_path):
    """The harness reports an escaping error (what kills dnsmasq's
    helper), so the tests above do prove that none escapes."""
    script = tmp_path / "bad.lua"
    script.write_text("function lease(action, t) error('boom') end\n")
    with pytest.raises(LuaError, match="boom"):
        LuaHook(str(script)).lease("add")
    script.write_text("function lease(\n")
    with pytest.raises(LuaError):
        LuaHook(str(script))


def test_lua_argv_replaces_only_the_hook(tmp_path):
    settings = plan.DhcpSettings(
        networks_path="/var/lib/flatnet/networks",
        dhcpbridge="/usr/bin/flatnet-dhcpbridge",
    )
    net = flat_network(dhcp_start=netaddr.IPAddress("10.0.0.2"))
    sh = plan.dnsmasq_argv(plan.dnsmasq_spec(net, settings))
    lua_settings = dataclasses.replace(settings, dhcp_lease_hook="lua")
    lua = plan.dnsmasq_argv(plan.dnsmasq_spec(net, lua_settings))
    index = sh.index(
        "--dhcp-script=/var/lib/flatnet/networks/flatnet-dhcp-script"
    )
    assert lua[:index] == sh[:index]
    assert lua[index : index + 3] == [
        "--dhcp-luascript=/var/lib/flatnet/networks/flatnet-lease-hook.lua",
        "--dhcp-authoritative",
        "--script-on-renewal",
    ]
    assert lua[index + 3 :] == sh[index + 1 :]
    assert not any(a.startswith("--dhcp-script") for a in lua)
