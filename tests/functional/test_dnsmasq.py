"""linux/dnsmasq.py against a real dnsmasq in a namespace (root)."""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import tempfile
import textwrap

import pytest

from tests.functional import netns

pytestmark = pytest.mark.root

SCRIPT = textwrap.dedent("""
    import json, os, signal, subprocess, sys
    from flatnet.linux.dnsmasq import DnsmasqProcess
    from flatnet.plan import dnsmasq as plan
    np = sys.argv[1]
    settings = plan.DhcpSettings(networks_path=np, dhcpbridge="/bin/true",
                                 dhcp_hostsdir=True,
                             dhcp_script_fast_path=False)
    import netaddr
    from flatnet.model import Network
    net = Network(id=7, uuid="u", label="t",
        cidr=netaddr.IPNetwork("10.232.0.0/24"),
        gateway=netaddr.IPAddress("10.232.0.1"),
        dhcp_server=netaddr.IPAddress("10.232.0.1"),
        dhcp_start=netaddr.IPAddress("10.232.0.2"),
        broadcast=netaddr.IPAddress("10.232.0.255"),
        netmask=netaddr.IPAddress("255.255.255.0"),
        bridge="brt", bridge_interface=None)
    spec = plan.dnsmasq_spec(net, settings)
    os.makedirs(spec.paths.hostsdir, exist_ok=True)
    for path in (spec.paths.hosts, spec.paths.opts):
        open(path, "w").close()
    argv = plan.dnsmasq_argv(spec)
    proc = DnsmasqProcess("brt", spec.paths)
    out = {"before": proc.pid()}
    sleeper = subprocess.Popen(["sleep", "30"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    open(spec.paths.pid, "w").write(str(sleeper.pid))
    out["foreign"] = proc.pid()
    pid = proc.start(argv)
    out["ours"] = proc.pid() == pid
    out["matches"] = proc.matches(pid, argv)
    other = argv[:-1]
    out["changed"] = proc.matches(pid, other)
    env_changed = [a.replace("NETWORK_ID=7", "NETWORK_ID=8") for a in argv]
    out["env_changed"] = proc.matches(pid, env_changed)
    out["served"] = proc.wait_served("10.232.0.1", 5)
    proc.reload(pid)
    out["served_after_hup"] = proc.wait_served("10.232.0.1", 5)
    proc.stop(pid)
    out["after_stop"] = proc.pid()
    out["sleeper_alive"] = sleeper.poll() is None
    sleeper.kill()
    print(json.dumps(out))
""")


def test_dnsmasq_process_lifecycle(make_netns):
    ns = make_netns("dq")
    netns.run(["ip", "link", "add", "brt", "type", "bridge"], netns=ns)
    netns.run(["ip", "addr", "add", "10.232.0.1/24", "dev", "brt"], netns=ns)
    netns.run(["ip", "link", "set", "brt", "up"], netns=ns)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fntdq"))
    tmp.chmod(0o755)
    try:
        done = netns.run(
            [sys.executable, "-c", SCRIPT, str(tmp)], netns=ns, check=False
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "before": None,
        "foreign": None,
        "ours": True,
        "matches": True,
        "changed": False,
        "env_changed": False,
        "served": True,
        "served_after_hup": True,
        "after_stop": None,
        "sleeper_alive": True,
    }
