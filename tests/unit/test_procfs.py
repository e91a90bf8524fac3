"""linux/procfs.py on a fake /proc tree, linux/dnsmasq.py's proof on
this very process, and linux/dhcp_release.py's error translation."""

from __future__ import annotations

import logging
import os
import pathlib
import socket

import netaddr
import pytest

from flatnet import exception
from flatnet.linux import procfs
from flatnet.linux.dhcp_release import DhcpRelease
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.plan import dnsmasq as plan

UDP_HEADER = (
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
    "retrnsmt   uid  timeout inode ref pointer drops\n"
)


def _stat(comm: str, state: str, start: int) -> str:
    rest = " ".join(["0"] * 18)
    return f"42 ({comm}) {state} {rest} {start} 0 0\n"


@pytest.fixture
def fake_proc(tmp_path) -> pathlib.Path:
    base = tmp_path / "42"
    (base / "fd").mkdir(parents=True)
    (base / "net").mkdir()
    return tmp_path


def test_start_time_survives_odd_command_names(fake_proc):
    stat = fake_proc / "42" / "stat"
    stat.write_text(_stat("a) b (c", "S", 123456))
    assert procfs.start_time(42, str(fake_proc)) == 123456
    stat.write_text(_stat("dnsmasq", "Z", 123456))
    assert procfs.start_time(42, str(fake_proc)) is None  # a zombie
    assert procfs.start_time(43, str(fake_proc)) is None  # gone


def test_root_udp_ports_need_our_socket_and_uid_0(fake_proc):
    fds = fake_proc / "42" / "fd"
    os.symlink("socket:[1001]", fds / "3")
    os.symlink("socket:[1002]", fds / "4")
    os.symlink("/dev/null", fds / "5")
    rows = [
        # port 67 by root, ours
        " 1: 00000000:0043 00000000:0000 07 0:0 00:0 0 0 0 1001 2 p 0",
        # port 53 by nobody, ours
        " 2: 0100EF0A:0035 00000000:0000 07 0:0 00:0 0 65534 0 1002 2 p 0",
        # port 68 by root, not ours
        " 3: 00000000:0044 00000000:0000 07 0:0 00:0 0 0 0 1003 2 p 0",
    ]
    (fake_proc / "42" / "net" / "udp").write_text(
        UDP_HEADER + "\n".join(rows) + "\n"
    )
    assert procfs.root_udp_ports(42, str(fake_proc)) == {67}


def test_this_process_is_no_dnsmasq(tmp_path):
    """Our own process: right namespaces, a root-created UDP socket on a
    high port, no marker and no port 67: not proven, with the reason."""
    paths = plan.dnsmasq_paths(str(tmp_path), "br100")
    proc = DnsmasqProcess("br100", paths)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        me = os.getpid()
        assert procfs.same_namespaces(me)
        if os.getuid() == 0:
            assert sock.getsockname()[1] in procfs.root_udp_ports(me)
        assert not proc.owns(me)
        assert not proc.proven(me)
        assert proc.disproof(me) is not None
        with pytest.raises(exception.DnsmasqError, match="not a proven"):
            proc.reload(me)  # never signalled
        proc.stop(me)  # nothing happens: we are still here
    assert proc.pid() is None


def test_dhcp_release_failures_are_translated_once(monkeypatch):
    address = netaddr.IPAddress("10.0.0.2")
    mac = netaddr.EUI("fa:16:3e:00:00:01")
    missing = DhcpRelease(binary="/nonexistent/dhcp_release")
    with pytest.raises(exception.DhcpReleaseError, match="nonexistent"):
        missing.release("lo", address, mac)
    in_netns = DhcpRelease(netns="fntnone")
    assert in_netns.release("lo", address, mac) is False  # no such netns
    monkeypatch.setenv("PATH", "/nonexistent")  # no ``ip`` to run
    with pytest.raises(exception.DhcpReleaseError, match="ip: "):
        in_netns.release("lo", address, mac)


def test_a_stale_pid_file_is_reported_once_not_every_loop(
    tmp_path, fake_proc, caplog
):
    paths = plan.dnsmasq_paths(str(tmp_path), "br100")
    pathlib.Path(paths.pid).write_text("4242\n")
    proc = DnsmasqProcess("br100", paths, proc=str(fake_proc))
    with caplog.at_level(logging.INFO, logger="flatnet.linux.dnsmasq"):
        for _ in range(10):
            assert proc.pid() is None
    assert caplog.text.count("pid 4242 is stale") == 1
