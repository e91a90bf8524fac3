"""Another local user against dnsmasq's supervision (root only).

The real flatnet-network, dnsmasq and udhcpc; the impostors run as uid
65534 (``nobody``, dnsmasq's own user) in the network host's namespace,
carrying this network's ``--dhcp-hostsfile=`` marker under the name
``dnsmasq`` (``exec -a``) and holding a socket, as in issue 7.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from flatnet.plan import dnsmasq as plan
from tests.functional import netns
from tests.functional.dhcp_site import Site, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

MAC1 = "fa:16:3e:00:07:01"
MAC2 = "fa:16:3e:00:07:02"
IMPOSTOR = """
import os, signal, socket, sys, time
signal.signal(signal.SIGHUP, lambda *_: print("HUP", flush=True))
signal.signal(signal.SIGTERM, lambda *_: print("TERM", flush=True))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
pid_file = os.environ.get("PID_FILE")
print("ready", flush=True)
while True:
    if pid_file:  # dnsmasq chowned it to nobody: rewrite it, in place
        # (no truncate first: a reader must never see it empty)
        data = f"{os.getpid()}\\n".encode()
        try:
            fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            os.close(fd)
        except OSError:
            pass
    time.sleep(0.01)
"""


class Impostor:
    """A uid-65534 python named ``dnsmasq`` with the site's marker."""

    def __init__(self, site: Site, pid_file: str = "") -> None:
        marker = f"--dhcp-hostsfile={site.np}/nova-br100.conf"
        shell = 'exec -a dnsmasq "$0" -c "$1" "$2"'
        argv = ["setpriv", "--reuid=65534", "--regid=65534"]
        argv += ["--clear-groups", "bash", "-c", shell]
        argv += ["/usr/bin/python3", IMPOSTOR, marker]
        self.proc = netns.popen(
            argv,
            netns=site.host,
            stdout=subprocess.PIPE,
            env={"PID_FILE": pid_file, "PATH": os.environ["PATH"]},
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == "ready\n"
        self.pid = self.proc.pid  # ip netns exec and setpriv exec

    def signals(self) -> str:
        self.proc.kill()
        out, _ = self.proc.communicate(timeout=10)
        return out

    def status(self) -> tuple[str, str]:
        text = pathlib.Path(f"/proc/{self.pid}/status").read_text()
        uid = next(x for x in text.splitlines() if x.startswith("Uid:"))
        return uid.split()[1], os.readlink(f"/proc/{self.pid}/exe")


def _cmdline(pid: int) -> list[bytes]:
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def _warnings(site: Site, pid: int) -> list[str]:
    return [
        line
        for line in site.daemon_log.read_text().splitlines()
        if "WARNING" in line and f"pid {pid} " in line
    ]


def test_impostor_does_not_keep_dnsmasq_down(make_dhcp_site):
    site = make_dhcp_site()
    site.start_daemon()
    site.create("vm1", MAC1)
    client = site.client(site.plug(MAC1))
    client.bound()
    real = site.dnsmasq_pid()
    assert real is not None
    impostor = Impostor(site)
    assert impostor.status()[0] == "65534"
    assert _cmdline(impostor.pid)[0] == b"dnsmasq"
    killed = time.monotonic()
    os.kill(real, signal.SIGKILL)
    wait_for(
        lambda: site.dnsmasq_pid() not in (None, real, impostor.pid),
        10,
        "the real dnsmasq restarted despite the impostor",
    )
    restart = time.monotonic() - killed
    assert client.renew() == "renew"
    uid, exe = impostor.status()
    time.sleep(0.3)  # a few more loops: still one warning
    warnings = _warnings(site, impostor.pid)
    assert len(warnings) == 1, warnings
    assert f"uid {uid}" in warnings[0]
    assert f"exe {exe}" in warnings[0]
    assert "never signalled" in warnings[0]
    assert impostor.signals() == ""  # alive until now, never signalled
    print(f"\nkill -9 -> restarted next to an impostor in {restart:.3f} s")


def test_rewritten_pid_file_does_not_divert_the_hups(make_dhcp_site):
    site = make_dhcp_site()
    site.start_daemon()
    site.create("vm1", MAC1)
    client = site.client(site.plug(MAC1))
    client.bound()
    real = site.dnsmasq_pid()
    pid_file = site.np / "nova-br100.pid"
    assert pid_file.stat().st_uid == 65534  # dnsmasq chowned it
    impostor = Impostor(site, pid_file=str(pid_file))
    wait_for(
        lambda: pid_file.read_text().strip() == str(impostor.pid),
        5,
        "pid file rewritten by nobody",
    )
    log = site.tmp / "dnsmasq.log"
    reads = log.read_text().count(f"read {site.np}/nova-br100.conf")
    site.manage("instance", "delete", "vm1")  # compaction: one HUP
    wait_for(
        lambda: (
            log.read_text().count(f"read {site.np}/nova-br100.conf") > reads
        ),
        10,
        "the real dnsmasq re-read its hosts file",
    )
    assert client.renew() == "nak"  # the real dnsmasq forgot vm1
    site.create("vm2", MAC2)
    assert site.client(site.plug(MAC2)).bound()["hostname"] == "vm2"
    assert impostor.signals() == ""  # not one HUP reached it
    assert pid_file.read_text().strip() == str(impostor.pid)
    warnings = _warnings(site, impostor.pid)
    assert len(warnings) == 1, warnings
    real_now = [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if pid == real
    ]
    assert real_now == [real]  # no restart either


def test_real_dnsmasq_binary_run_by_nobody_is_not_trusted(
    make_netns, world_readable_dir
):
    """The real executable, the marker, sockets (DNS on a high port),
    but no root-created socket on port 67: never proven."""
    ns = make_netns("imp")
    paths = plan.dnsmasq_paths(str(world_readable_dir), "br100")
    pathlib.Path(paths.hosts).write_text("")
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    argv += ["dnsmasq", "--keep-in-foreground", "--port=5353"]
    argv += ["--listen-address=127.0.0.1", "--bind-interfaces"]
    argv += ["--conf-file=", "--pid-file=", f"--dhcp-hostsfile={paths.hosts}"]
    fake = netns.popen(argv, netns=ns, stderr=subprocess.PIPE)
    check = f"""
import json
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.plan import dnsmasq as plan
paths = plan.dnsmasq_paths({str(world_readable_dir)!r}, "br100")
proc = DnsmasqProcess("br100", paths)
pid = {fake.pid}
print(json.dumps([proc.owns(pid), proc.disproof(pid), proc.pid()]))
"""
    try:
        wait_for(
            lambda: os.readlink(f"/proc/{fake.pid}/exe").endswith("dnsmasq"),
            10,
            "dnsmasq as nobody",
        )
        wait_for(lambda: _holds_socket(fake.pid), 10, "its DNS socket")
        out = netns.run([sys.executable, "-c", check], netns=ns)
        owns, why, found = json.loads(out.stdout)
        assert owns is True
        assert why == "it holds no UDP socket on port 67 created by root"
        assert found is None
    finally:
        fake.kill()
        fake.communicate(timeout=10)


def _holds_socket(pid: int) -> bool:
    fds = pathlib.Path(f"/proc/{pid}/fd")
    return any(os.readlink(fd).startswith("socket:") for fd in fds.iterdir())
