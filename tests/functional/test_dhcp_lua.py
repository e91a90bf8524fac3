"""dhcp_lease_hook = lua with the real flatnet-network, dnsmasq
(dnsmasq-base-lua, --dhcp-luascript) and busybox udhcpc (root only).

1. Events reach the database through the Lua hook: the same journal
   records as the sh hook, a renewal journals ``old``
   (--script-on-renewal); dnsmasq keeps its helper child.
2. dnsmasq killed mid-lease and restarted by the keeper (no ``init``
   for a Lua script): the client's renewal is ACKed, not NAKed
   (--dhcp-authoritative) and journaled as ``add``; a lease nobody
   renews any more is expired in the database by the daemon.
3. An error escaping the script's lease() kills dnsmasq's helper
   silently: the keeper sees the helper gone and restarts dnsmasq.
4. A script that fails to load: dnsmasq exits 5, the error names it.
"""

from __future__ import annotations

import datetime
import pathlib
import re
import time

import pytest
from sqlalchemy import update

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.db.rows import FIXED
from flatnet.linux import dnsmasq_helper
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.plan import dnsmasq as plan
from tests.functional.dhcp_site import Site, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

MACS = ["fa:16:3e:00:0c:01", "fa:16:3e:00:0c:02"]


def _db(site: Site) -> db_api.Database:
    return db_api.Database(f"sqlite:///{site.tmp}/flatnet.sqlite")


def _leased(site: Site) -> set[str]:
    return {str(x.address) for x in db_api.leases(_db(site), 1)}


def _journal(site: Site) -> str:
    path = site.np / "nova-br100.events"
    return path.read_text() if path.exists() else ""


def _restarted(site: Site, old: int | None) -> int:
    return wait_for(  # type: ignore[return-value]
        lambda: (pid := site.dnsmasq_pid()) not in (None, old) and pid,
        40,
        "dnsmasq restarted by the keeper",
    )


def test_lua_hook_journals_and_survives_a_restart(make_dhcp_site):
    site = make_dhcp_site(dhcp_lease_hook="lua")
    site.start_daemon()
    made = [site.create(f"vm{n}", mac) for n, mac in enumerate(MACS)]
    ips = [x["interfaces"][0]["address"] for x in made]
    pid = site.dnsmasq_pid()
    assert pid is not None
    argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--dhcp-authoritative" in argv
    assert not any(a.startswith(b"--dhcp-script") for a in argv)
    assert dnsmasq_helper.has_helper(pid)
    clients = [site.client(site.plug(mac)) for mac in MACS]
    for client in clients:
        client.bound(40)
    wait_for(lambda: _leased(site) == set(ips), 30, "both leased")
    for mac, ip in zip(MACS, ips, strict=True):
        assert f"\nadd {mac} {ip}\n" in _journal(site)
    # dnsmasq runs the script on renewal only if the lease's expiry (in
    # whole seconds) changed: renew in a later second than the ACK
    time.sleep(1.1)
    assert clients[0].renew(30) == "renew"
    wait_for(lambda: f"\nold {MACS[0]} {ips[0]}\n" in _journal(site), 30)
    # dnsmasq dies mid-lease; the keeper restarts it without init
    clients[1].stop()  # vm1 goes silent: nobody renews its lease
    site.kill_dnsmasqs()
    new_pid = _restarted(site, pid)
    before = _journal(site).count(f"\nadd {MACS[0]} {ips[0]}\n")
    assert clients[0].renew(30) == "renew"  # ACKed, no NAK
    wait_for(
        lambda: _journal(site).count(f"\nadd {MACS[0]} {ips[0]}\n") > before,
        30,
        "the renewal after the restart journaled as add",
    )
    assert dnsmasq_helper.has_helper(new_pid)
    assert not [e for e in clients[0].events() if e["event"] == "nak"]
    # vm1's lease: dnsmasq will never send its del; age it past
    # lease time + grace and the daemon releases it (checked every 10 s)
    stale = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    with _db(site).write() as conn:
        conn.execute(
            update(FIXED)
            .where(FIXED.c.address == ips[1])
            .values(updated_at=stale - datetime.timedelta(seconds=1000))
        )
    wait_for(lambda: _leased(site) == {ips[0]}, 40, "vm1 expired")
    assert site.daemon_lines("leases expired unseen") >= 1


def test_a_dead_helper_is_seen_and_dnsmasq_restarted(make_dhcp_site):
    site = make_dhcp_site(dhcp_lease_hook="lua")
    site.start_daemon()
    ip = site.create("vm0", MACS[0])["interfaces"][0]["address"]
    script = site.np / "flatnet-lease-hook.lua"
    good = script.read_text()
    script.write_text("function lease(action, t) error('boom') end\n")
    pid = site.dnsmasq_pid()
    site.kill_dnsmasqs()
    pid = _restarted(site, pid)  # now running the raising script
    assert dnsmasq_helper.has_helper(pid)
    client = site.client(site.plug(MACS[0]))
    client.bound(40)  # dnsmasq serves on; its helper dies on the event
    wait_for(
        lambda: site.daemon_lines("lost its lease-script helper") >= 1,
        30,
        "the keeper noticed the dead helper",
    )
    assert site.dnsmasq_pid() != pid or not dnsmasq_helper.has_helper(pid)
    assert ip not in _leased(site)
    script.write_text(good)  # repaired: the next restart records again
    before = site.dnsmasq_pid()  # read before the kill: the keeper is fast
    site.kill_dnsmasqs()
    _restarted(site, before)
    assert client.renew(30) == "renew"
    wait_for(lambda: ip in _leased(site), 30, "leased again")


def test_a_script_that_fails_to_load_is_a_clear_error(
    world_readable_dir, make_netns
):
    bad = world_readable_dir / "bad.lua"
    bad.write_text("function lease(\n")
    paths = plan.dnsmasq_paths(str(world_readable_dir), "br100")
    ns = make_netns("lua")
    argv = [
        "ip",
        "netns",
        "exec",
        ns,
        "dnsmasq",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        f"--pid-file={paths.pid}",
        "--port=0",
        "--conf-file=",
        f"--dhcp-hostsfile={paths.hosts}",
        "--dhcp-range=127.0.0.2,static,255.0.0.0,120s",
        f"--dhcp-luascript={bad}",
    ]
    with pytest.raises(exception.DnsmasqError) as caught:
        DnsmasqProcess("br100", paths).start(argv)
    text = str(caught.value)
    assert re.search(r"exit 5: .*Lua script", text), text
    assert str(bad) in text
