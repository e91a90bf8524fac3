"""Security groups end to end through the CLI, on a real VM.

One host runs flatnet-network (``flatnet_roles = network, compute``,
``use_nwfilter``) and flatnet-metadata in a namespace, as `make demo`
deploys it (demo/cloud.py); libvirt's bridge is a guarded, uniquely
named root-namespace bridge whose only other port is the network
host's flat interface (demo/vm_form.py). Then, through
``flatnet-manage`` only:

* ``secgroup create web`` and ``secgroup rule-add web --protocol tcp
  --port-range 80:80``;
* ``instance create vmx --secgroup web --wait`` returns when DHCP and
  the instance's filters are live: at that moment the hosts entry, the
  instance's iptables chain (with its port 80 rule) and its libvirt
  nwfilter already exist;
* a real VM booted on that allocation (the hooks' ``interface_xml``)
  gets its lease and listens on tcp/80 and tcp/81: from outside, 80
  passes and 81 is dropped;
* ``secgroup rule-add web --protocol tcp --port-range 81:81`` reaches
  the running VM within 1 s of the command's return.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.functional import vm

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "demo"))

import cloud  # noqa: E402
import vm_form  # noqa: E402
from sandbox import Sandbox, sh  # noqa: E402

PROBE = """
import socket, sys, time
deadline = time.time() + float(sys.argv[3])
while time.time() < deadline:
    s = socket.socket(); s.settimeout(0.05)
    if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0:
        print(repr(time.time())); sys.exit(0)
    s.close(); time.sleep(0.01)
sys.exit(1)
"""


class Site:
    """The deployment; ``cli`` runs flatnet-manage against it."""

    def __init__(self, box: Sandbox, form: vm_form.VmForm) -> None:
        self.box, self.form = box, form
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="flatnet-clivm-"))
        self.dir.chmod(0o755)
        self.conf = cloud.write_config(self.dir, form.bridge_name, True)
        cloud.create_network(self.conf, form.bridge_name)
        self.host, self.outside = cloud.build_host(box)
        form.plug_flat_interface(self.host)
        self.procs = cloud.start_services(self.host, self.conf, self.dir)

    def cli(self, *args: str) -> str:
        return cloud.manage(self.conf, *args)

    def close(self) -> None:
        self.form.destroy_guests()
        cloud.stop_services(self.procs)
        self.form.close()
        self.box.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def site() -> Iterator[Site]:
    try:
        form = vm_form.VmForm()
    except vm.VmUnavailable as exc:
        pytest.skip(f"no VM tests: {exc}")
    made = None
    box = Sandbox(f"d{os.getpid()}")  # swept by a demo once we are dead
    try:
        made = Site(box, form)
        yield made
    finally:
        if made is not None:
            made.close()
        else:
            form.close()
            box.close()


def _boot(site: Site, name: str) -> tuple[vm.Guest, str]:
    """A VM on the allocation, as a compute driver boots it."""
    from flatnet import settings, wiring  # noqa: PLC0415

    api = wiring.network_api(settings.load([str(site.conf)]))
    vif = api.get_instance_nw_info(name)[0]
    nic = vm_form.FlatnetNic(
        bridge=vif["network"]["bridge"], mac=vif["address"],
        tap=vif["devname"], xml=api.interface_xml(vif),
    )  # fmt: skip
    guest = vm.Guest(
        site.form.conn, nic, "fnt.run=listen,80;listen,81;mark,up fnt.hold=120"
    )
    site.form.guests[name] = guest
    return guest, vif["network"]["subnets"][0]["ips"][0]["address"]


def test_cli_secgroup_reaches_a_real_vm(site: Site) -> None:
    site.cli("secgroup", "create", "web", "--description", "web servers")
    site.cli("secgroup", "rule-add", "web", "--protocol", "tcp",
             "--port-range", "80:80", "--cidr", "0.0.0.0/0")  # fmt: skip
    info = json.loads(
        site.cli("instance", "create", "vmx", "--secgroup", "web", "--wait",
                 "--format", "json")
    )  # fmt: skip
    vif = info["interfaces"][0]
    # --wait returned: DHCP entry, chain and nwfilter are all live now
    state = site.dir / "state" / "networks"
    hosts = "".join(p.read_text() for p in state.rglob("*") if p.is_file())
    assert vif["mac"] in hosts
    rules = sh(["iptables", "-w", "-S"], netns=site.host)
    chain = re.findall(r"^-A (\S+inst-\d+) .*--dport 80 .*-j ACCEPT", rules,
                       re.M)  # fmt: skip
    assert chain, rules
    mac = vif["mac"].replace(":", "")
    assert any(f.endswith(mac) for f in site.form._filters())

    guest, ip = _boot(site, "vmx")
    assert ip == vif["address"]
    assert f"LEASE ip={ip} " in guest.wait_line("LEASE", 120)
    guest.wait_line("MARK up", 60)
    assert cloud.can_connect(site.outside, ip, 80)
    assert not cloud.can_connect(site.outside, ip, 81)

    probe = subprocess.Popen(
        ["ip", "netns", "exec", site.outside, sys.executable, "-c", PROBE,
         ip, "81", "15"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    asked = time.time()
    site.cli("secgroup", "rule-add", "web", "--protocol", "tcp",
             "--port-range", "81:81", "--cidr", "0.0.0.0/0")  # fmt: skip
    returned = time.time()
    out, _ = probe.communicate(timeout=30)
    assert probe.returncode == 0, "tcp/81 never opened"
    opened = float(out)
    print(f"rule-add took {returned - asked:.2f} s; tcp/81 open "
          f"{opened - returned:+.2f} s after it returned")  # fmt: skip
    assert opened - returned < 1.0
    assert cloud.can_connect(site.outside, ip, 80)
