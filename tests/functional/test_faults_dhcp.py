"""Fault injection on the DHCP path (root only): kill -9 of the daemon
at chosen steps (tests/functional/fault_daemon.py), a full filesystem
under networks_path, a locked database. Real flatnet-network, dnsmasq
and busybox udhcpc in network namespaces.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest

from flatnet.db import api as db_api
from tests.functional import netns
from tests.functional.dhcp_site import Site, wait_for

pytestmark = [pytest.mark.root]

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAC1 = "fa:16:3e:00:07:01"
MAC2 = "fa:16:3e:00:07:02"


def _db(site: Site) -> db_api.Database:
    return db_api.Database(f"sqlite:///{site.tmp}/flatnet.sqlite")


def start_fault_daemon(site: Site, step: str) -> pathlib.Path:
    """Run the fault launcher as the site's daemon; returns the arm file
    (create it to let the fault fire at the next ``step``)."""
    arm = site.tmp / "fault.arm"
    env = {
        **os.environ,
        "FLATNET_FAULT": step,
        "FLATNET_FAULT_ARM": str(arm),
        "PYTHONPATH": str(ROOT),
    }
    handle = open(site.daemon_log, "a")  # noqa: SIM115 - closed by site
    site._close_log()
    site._log_handle = handle
    site.daemon = netns.popen(
        [sys.executable, "-m", "tests.functional.fault_daemon"]
        + ["--config-file", str(site.conf)],
        netns=site.host,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(ROOT),
    )
    wait_for(site.dnsmasq_pid, 20, "dnsmasq started by the fault daemon")
    return arm


def wait_killed(site: Site, arm: pathlib.Path) -> None:
    """The fault fired: the daemon died of SIGKILL and disarmed."""
    assert site.daemon is not None
    assert site.daemon.wait(timeout=30) == -9, site.daemon_log.read_text()
    assert not arm.exists()
    site.daemon = None


def wait_ready(site: Site, timeout: float = 20.0) -> None:
    """Until the daemon reports DHCP live at the current generation."""
    db = _db(site)
    generation = db_api.network_generations(db)[1]
    wait_for(
        lambda: db_api.host_state_get(db, "nethost", 1, "dhcp") >= generation,
        timeout,
        f"dhcp ready at generation {generation}",
    )
    db.dispose()


def try_lease(site: Site, mac: str, attempts: int = 3) -> str | None:
    """One udhcpc run (``attempts`` DISCOVERs 1 s apart) on a fresh
    instance namespace with ``mac``; the address bound, or None."""
    ns = site.plug(mac)
    log = site.tmp / f"{ns}.log"
    env = {**os.environ, "UDHCPC_LOG": str(log)}
    argv = ["udhcpc", "-f", "-n", "-q", "-i", "eth0", "-t", str(attempts)]
    argv += ["-T", "1", "-s", str(site.script)]
    done = subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=attempts * 2 + 10,
        check=False,
    )
    if done.returncode != 0:
        return None
    bound = [x for x in log.read_text().splitlines() if x.startswith("bound")]
    return bound[-1].split(" ")[1].removeprefix("ip=") if bound else None


STEPS = ["removed-written", "before-hup", "after-hup"]


@pytest.mark.parametrize("hostsdir", [True, False], ids=["hostsdir", "main"])
@pytest.mark.parametrize("step", STEPS)
def test_kill_during_removal_never_serves_the_removed_mac(
    make_dhcp_site, step, hostsdir
):
    site = make_dhcp_site(dhcp_hostsdir=str(hostsdir))
    arm = start_fault_daemon(site, step)
    site.create("vm1", MAC1)
    kept = site.create("vm2", MAC2)["interfaces"][0]["address"]
    arm.touch()
    site.manage("instance", "delete", "vm1")
    wait_killed(site, arm)
    site.start_daemon()
    wait_ready(site)
    assert try_lease(site, MAC2) == kept  # dnsmasq serves
    assert try_lease(site, MAC1) is None, site.daemon_log.read_text()


def _leftovers(site: Site) -> list[str]:
    return sorted(
        p.name
        for p in site.np.iterdir()
        if p.name.startswith(".nova-") or p.name.endswith(".init")
    )


def test_kill_mid_write_and_mid_start_leaves_nothing_after_restart(
    make_dhcp_site,
):
    site = make_dhcp_site(dhcp_hostsdir="False")
    arm = start_fault_daemon(site, "temp-written")
    arm.touch()
    site.manage("instance", "create", "vm1", "--mac", MAC1)
    wait_killed(site, arm)
    assert [x for x in _leftovers(site) if x.startswith(".nova-br100.")]
    arm = start_fault_daemon(site, "snapshot-written")
    wait_ready(site)
    arm.touch()
    site.kill_dnsmasqs()
    wait_killed(site, arm)
    assert "nova-br100.init" in _leftovers(site)
    site.start_daemon()
    # host_state still says ready (the killed daemon recorded it), so
    # wait_ready alone does not show that the new daemon ran yet
    wait_for(
        lambda: not _leftovers(site), 20, "the killed daemon's files removed"
    )
    wait_ready(site)
    assert try_lease(site, MAC1) is not None
    assert _leftovers(site) == []


@pytest.fixture
def tiny_tmpfs(world_readable_dir):
    """networks_path on a 1 MiB tmpfs (unmounted after the test)."""
    path = world_readable_dir / "networks"
    path.mkdir(mode=0o755)
    netns.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755",
               "fnttmpfs", str(path)])  # fmt: skip
    yield path
    netns.run(["umount", "-l", str(path)], check=False)


def fill(path: pathlib.Path) -> None:
    """Fill the filesystem of ``path`` to the last block."""
    netns.run(["dd", "if=/dev/zero", f"of={path}/fill", "bs=4k"], check=False)
    probe = path / "probe"
    with pytest.raises(OSError, match="No space"):
        probe.write_text("x" * 8192)


PROBE = """
import sys, time
from flatnet.linux.dnsmasq import DnsmasqProcess
print("ready", flush=True)
sys.stdin.readline()
start = time.monotonic()
while not DnsmasqProcess.wait_served(None, sys.argv[1], 0.5):
    pass
print(time.monotonic() - start, flush=True)
"""


def time_restart(site: Site) -> float:
    """kill -9 dnsmasq; seconds until a dnsmasq answers DNS again."""
    probe = netns.popen(
        [sys.executable, "-c", PROBE, "10.231.0.1"],
        netns=site.host,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=str(ROOT),
    )
    assert probe.stdin is not None
    assert probe.stdout is not None
    assert probe.stdout.readline() == "ready\n"
    site.kill_dnsmasqs()
    probe.stdin.write("go\n")
    probe.stdin.flush()
    try:
        return float(probe.communicate(timeout=20)[0])
    finally:
        probe.kill()
        probe.communicate()


def test_dead_dnsmasq_is_restarted_on_a_full_disk(make_dhcp_site, tiny_tmpfs):
    site = make_dhcp_site()
    site.start_daemon()
    address = site.create("vm1", MAC1)["interfaces"][0]["address"]
    client = site.client(site.plug(MAC1))
    assert client.bound()["ip"] == address
    db = _db(site)
    wait_for(lambda: db_api.leases(db, 1), 10, "lease recorded")
    fill(tiny_tmpfs)  # no room for the init snapshot of that lease
    took = time_restart(site)
    print(f"\nfull disk: kill -9 -> dnsmasq answers: {took * 1000:.0f} ms")
    log = site.daemon_log.read_text()
    assert "starting without an init snapshot" in log
    assert client.renew() == "renew"
    assert _leftovers(site) == []


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_dead_dnsmasq_is_restarted_while_the_database_is_locked(
    make_dhcp_site,
):
    site = make_dhcp_site()
    site.start_daemon()
    address = site.create("vm1", MAC1)["interfaces"][0]["address"]
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(site.tmp / "flatnet.sqlite"), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline() == "locked\n"
        time.sleep(1.5)  # the loop is now waiting on a write
        took = time_restart(site)
        print(f"\nlocked db: kill -9 -> dnsmasq answers: {took * 1000:.0f} ms")
        assert try_lease(site, MAC1) == address
        assert locker.poll() is None  # all that while the lock was held
    finally:
        locker.kill()
        locker.communicate()


def test_wait_on_a_full_disk_names_the_disk_and_the_path(
    make_dhcp_site, tiny_tmpfs
):
    site = make_dhcp_site()
    site.start_daemon()
    site.create("vm1", MAC1)
    fill(tiny_tmpfs)
    out = site.manage(
        "instance", "create", "vm2", "--mac", MAC2, "--network", "private",
        "--host", "nethost", "--wait", "--timeout", "3", check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "host nethost, network 1 (br100): No space left on device: " in (
        out.stderr
    ), out.stderr
    assert str(tiny_tmpfs) in out.stderr
    (tiny_tmpfs / "fill").unlink()  # space again: the daemon catches up
    wait_ready(site)
    state = db_api.host_state(_db(site), "nethost", "dhcp", "network:1")
    assert state is not None
    assert state.last_error is None
