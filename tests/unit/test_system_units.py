"""The systemd units `make install-system` installs: one per role
(network host, compute host alone, metadata), each running a command
this package installs with the configuration files it ships, and the
compute-only configuration giving the compute role alone."""

from __future__ import annotations

import configparser
import pathlib
import shlex
import subprocess

import pytest

from flatnet import settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
ETC = ROOT / "etc" / "flatnet"
UNITS = ("network", "compute", "metadata")


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ETC / f"flatnet-{name}.service.in").read_text())
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_unit_runs_an_installed_command_with_shipped_files(name) -> None:
    unit = _unit(name)
    argv = shlex.split(unit["Service"]["ExecStart"])
    command = "metadata" if name == "metadata" else "network"
    assert argv[0] == f"@PREFIX@/bin/flatnet-{command}"
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--config-file"]
    assert files[0] == "@SYSCONFDIR@/flatnet.conf"
    for path in files:
        assert (ETC / path.removeprefix("@SYSCONFDIR@/")).exists()
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_network_and_compute_units_exclude_each_other() -> None:
    assert _unit("network")["Unit"]["Conflicts"] == "flatnet-compute.service"
    assert _unit("compute")["Unit"]["Conflicts"] == "flatnet-network.service"
    # dnsmasq outlives a restart of the network role only
    assert _unit("network")["Service"]["KillMode"] == "process"
    assert _unit("compute")["Service"]["KillMode"] == "mixed"


def test_compute_conf_gives_the_compute_role_alone(tmp_path) -> None:
    conf = tmp_path / "flatnet.conf"
    conf.write_text(
        "[DEFAULT]\nhost = c1\nflatnet_roles = network,compute\n"
        f"state_path = {tmp_path}\n"
        f"[database]\nconnection = sqlite:///{tmp_path}/f.sqlite\n"
    )
    both = settings.load([str(conf)])
    alone = settings.load([str(conf), str(ETC / "compute.conf")])
    assert tuple(both.roles) == ("network", "compute")
    assert tuple(alone.roles) == ("compute",)
    assert alone.host == "c1"


def test_install_system_installs_every_unit() -> None:
    out = subprocess.run(
        ["make", "-n", "install-system", "UNITDIR=/u", "SYSCONFDIR=/e"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "for u in network compute metadata" in out
    assert "/e/compute.conf" in out
    assert all((ETC / f"flatnet-{u}.service.in").exists() for u in UNITS)
