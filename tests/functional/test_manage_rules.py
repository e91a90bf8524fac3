"""flatnet-manage verify / repair, run as an operator would: the real
command in a fresh network namespace (its iptables and addresses), on a
SQLite database prepared with the CLI."""

from __future__ import annotations

import pathlib
import sys

import pytest

from flatnet.cmd import manage
from tests.functional import netns

pytestmark = pytest.mark.root
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path, make_netns, capsys):
    """A namespace without eth1 and a database with one network and a
    floating IP associated on public_interface = eth1."""
    conf = tmp_path / "flatnet.conf"
    conf.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\nhost = node1\n"
        "flat_network_bridge = br100\npublic_interface = eth1\n"
        "routing_source_ip = 172.24.4.1\nmetadata_host = 127.0.0.1\n"
        "iptables_backend = restore\nflatnet_roles = network\n"
    )
    for argv in (
        ["db", "sync"],
        ["network", "create", "--label", "private", "--fixed-range-v4",
         "10.0.0.0/24", "--bridge", "br100"],
        ["instance", "create", "vm1"],
        ["floating", "create", "--ip-range", "172.24.4.0/29"],
        ["floating", "associate", "--address", "172.24.4.3",
         "--instance", "vm1"],
    ):  # fmt: skip
        assert manage.main(["--config-file", str(conf), *argv]) == 0
    capsys.readouterr()
    return {"conf": str(conf), "ns": make_netns("mr")}


def flatnet_manage(site, *argv: str):
    return netns.run(
        [sys.executable, "-m", "flatnet.cmd.manage", "--config-file",
         site["conf"], *argv],
        netns=site["ns"], check=False, timeout=60,
    )  # fmt: skip


def live(site) -> tuple[str, str]:
    """iptables-save (without comments) and the IPv4 addresses."""
    saved = netns.run(["iptables-save"], netns=site["ns"]).stdout
    rules = "\n".join(ln for ln in saved.splitlines() if ln[:1] != "#")
    addrs = netns.run(["ip", "-4", "-o", "addr"], netns=site["ns"]).stdout
    return rules, addrs


def test_repair_without_the_public_interface_changes_nothing(site):
    before = live(site)
    out = flatnet_manage(site, "repair")
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith("error: ")
    assert "public_interface = eth1: no such device" in line
    assert "172.24.4.3" in line
    assert "nothing was changed" in line
    assert live(site) == before
    assert "169.254.169.254" not in before[1]

    out = flatnet_manage(site, "verify")
    assert out.returncode == 3, out.stderr
    assert "! public_interface = eth1: no such device" in out.stdout
    assert live(site) == before


def test_repair_prints_what_differed_and_what_it_repaired(site):
    netns.run(
        ["ip", "link", "add", "eth1", "type", "veth", "peer", "eth1p"],
        netns=site["ns"],
    )
    out = flatnet_manage(site, "verify")
    assert out.returncode == 3
    assert "+addr 172.24.4.3/32 dev eth1" in out.stdout
    assert "+addr 169.254.169.254/32 dev lo" in out.stdout
    differences = out.stdout.splitlines()[:-1]

    out = flatnet_manage(site, "repair")
    assert out.returncode == 0, out.stderr
    *listed, summary = out.stdout.splitlines()
    assert listed == differences
    assert summary == (
        f"repaired {len(differences)} difference(s): iptables filter, nat, "
        "mangle updated; added 169.254.169.254/32 dev lo; "
        "bound 172.24.4.3 eth1"
    )
    assert "SyncResult(" not in out.stdout + out.stderr
    assert flatnet_manage(site, "verify").stdout == (
        "rules and addresses are as wanted\n"
    )

    netns.run(["iptables", "-t", "nat", "-F", "nova-network-PREROUTING"],
              netns=site["ns"])  # fmt: skip
    out = flatnet_manage(site, "verify")
    assert out.returncode == 3
    assert (
        "+-A nova-network-PREROUTING -d 172.24.4.3/32 "
        "-j DNAT --to-destination 10.0.0.2"
    ) in out.stdout
    out = flatnet_manage(site, "repair")
    assert out.stdout.splitlines()[-1].endswith(": iptables nat updated")
    assert flatnet_manage(site, "verify").returncode == 0
