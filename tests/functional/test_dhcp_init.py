"""dnsmasq restart with many leases: the ``init`` snapshot (root only).

The real flatnet-network daemon, dnsmasq and hooks; 2,000 hosts, all
leased. dnsmasq is killed with SIGKILL; a raw-socket prober (a leased
MAC, one DISCOVER every 5 ms) times the first OFFER of the new dnsmasq.
"before" is the Python ``init`` (``dhcp_script_fast_path = False``: the
script is flatnet-dhcpbridge itself, as the sh hook exec'ed it for
``init``), "after" the daemon's snapshot printed by the sh hook.
Figures are printed (``-s``); only correctness is asserted.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import netaddr
import pytest

from flatnet.db import api as db_api
from flatnet.model import LeaseEvent
from tests.functional import netns
from tests.functional.dhcp_site import Site, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

HOSTS = 2000
ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBER = """
import select, sys, time
sys.path.insert(0, sys.argv[1])
from bench import dhcp_client as dc
sock = dc.raw_socket("eth0")
sock.setblocking(False)
xid = 0x5EED
frame = dc.dhcp_frame(bytes.fromhex(sys.argv[2].replace(":", "")), xid, 1)
end = time.monotonic() + float(sys.argv[3])
last = None
next_send = 0.0
while (now := time.monotonic()) < end:
    if now >= next_send:
        sock.send(frame)
        next_send = now + 0.005
    select.select([sock], [], [], max(0.0, next_send - now))
    while True:
        try:
            reply = dc.parse_reply(sock.recv(2048))
        except BlockingIOError:
            break
        if reply and reply[0] == xid and reply[1] == 2:
            now = time.monotonic()
            if last is None or now - last > 0.05:
                print(f"{now:.6f}", flush=True)  # first OFFER after a gap
            last = now
"""


@pytest.fixture
def state_dir(world_readable_dir):
    return world_readable_dir


def _mac(n: int) -> str:
    return f"fa:16:3e:01:{n >> 8:02x}:{n & 0xFF:02x}"


def _preload(db: db_api.Database, count: int) -> None:
    for n in range(count):
        db_api.instance_create_allocated(
            db,
            db_api.InstanceSpec(
                hostname=f"h{n}", display_name=f"h{n}", host="nethost"
            ),
            [db_api.VifRequest(network_id=1, mac=netaddr.EUI(_mac(n)))],
        )
    events = [
        LeaseEvent("add", e.mac, e.address) for e in db_api.host_entries(db, 1)
    ]
    db_api.apply_lease_events(db, "test-preload", 1, len(events), events)


def _start_seconds(site: Site) -> list[float]:
    text = site.daemon_log.read_text()
    pattern = r"started pid \d+ in ([0-9.]+) s"
    return [float(x) for x in re.findall(pattern, text)]


@pytest.mark.parametrize("fast", [False, True], ids=["python", "snapshot"])
def test_restart_with_2000_leases_offers_fast(make_netns, state_dir, fast):
    site = Site(
        make_netns,
        state_dir,
        cidr="10.233.0.0/20",
        dhcp_script_fast_path=str(fast),
        # the single dnsmasq's init snapshot is measured here: not sharded
        dhcp_shard_hosts=str(HOSTS + 1000),
    )
    prober = None
    try:
        db = db_api.Database(f"sqlite:///{state_dir}/flatnet.sqlite")
        _preload(db, HOSTS)
        site.start_daemon()
        generation = db_api.network_generations(db)[1]
        wait_for(
            lambda: (
                db_api.host_state_get(db, "nethost", 1, "dhcp") >= generation
            ),
            60,
            "2,000 hosts live",
        )
        ns = site.plug(_mac(0))
        prober = netns.popen(
            [sys.executable, "-c", PROBER, str(ROOT), _mac(0), "60"],
            netns=ns,
            stdout=subprocess.PIPE,
        )
        assert prober.stdout is not None
        float(prober.stdout.readline())  # served before the kill
        old = site.dnsmasq_pid()
        assert old is not None
        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        offer = 0.0
        while offer <= killed:
            line = prober.stdout.readline()
            assert line, "\n".join(
                x
                for x in site.daemon_log.read_text().splitlines()
                if "is stale" not in x
            )[-4000:]
            offer = float(line)
        assert site.dnsmasq_pid() not in (None, old)
        init = site.np / "nova-br100.init"
        wait_for(lambda: not init.exists(), 5, "init snapshot removed")
        starts = _start_seconds(site)
        assert starts, site.daemon_log.read_text()[-3000:]
        label = "snapshot (sh)" if fast else "python init"
        print(
            f"\n{label}: {HOSTS} leased hosts: dnsmasq start incl. init "
            f"{starts[0]:.3f} s (first) / {starts[-1]:.3f} s (restart); "
            f"kill -9 -> first OFFER {offer - killed:.3f} s"
        )
    finally:
        if prober is not None:
            prober.kill()
            prober.wait()
            if prober.stdout is not None:
                prober.stdout.close()
        site.close()
        site.kill_dnsmasqs()
