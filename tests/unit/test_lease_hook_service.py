"""service/dhcp.py with dhcp_lease_hook = lua (FakeDnsmasq, real
SQLite): the argv, no ``init`` snapshot, journal files made 0600 before
dnsmasq starts, the keeper's helper check, the daemon's lease expiry,
the hook's error file reported."""

from __future__ import annotations

import datetime
import logging
import os

import netaddr
from sqlalchemy import update

from flatnet.db import api as db_api
from flatnet.db.rows import FIXED
from flatnet.model import LeaseEvent
from flatnet.plan import dnsmasq as plan
from flatnet.service import lease_guard, leases
from tests.unit.test_service_dhcp import Rig, tmp_open  # noqa: F401

IP = "10.210.0.2"


def _lease(rig: Rig, mac: str, ip: str = IP) -> None:
    event = LeaseEvent("add", netaddr.EUI(mac), netaddr.IPAddress(ip))
    db_api.apply_lease_events(rig.db, "t", 1, 1, [event])


def _age(rig: Rig, seconds: float) -> None:
    when = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    with rig.db.write() as conn:
        conn.execute(
            update(FIXED)
            .where(FIXED.c.address == IP)
            .values(updated_at=when - datetime.timedelta(seconds=seconds))
        )


def test_lua_network_runs_the_lua_hook_without_snapshot(tmp_open):  # noqa: F811
    rig = Rig(tmp_open, dhcp_lease_hook="lua")
    rig.add(1)
    rig.sync()
    argv = rig.rec.keeper._watches[rig.network.id].argv
    lua = os.path.join(rig.np, "flatnet-lease-hook.lua")
    assert f"--dhcp-luascript={lua}" in argv
    assert "--dhcp-authoritative" in argv
    assert not any(a.startswith("--dhcp-script=") for a in argv)
    assert rig.proc.init_seen == [None]  # dnsmasq runs no init for Lua
    with open(lua) as handle:
        assert "function lease(action, t)" in handle.read()
    paths = plan.dnsmasq_paths(rig.np, "br100")
    for path in (paths.events, paths.lost):  # made before dnsmasq ran
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_keeper_restarts_a_dnsmasq_whose_helper_died(tmp_open, caplog):  # noqa: F811
    rig = Rig(tmp_open, dhcp_lease_hook="lua")
    rig.add(1)
    rig.sync()
    keeper = rig.rec.keeper
    alive = {"helper": True}
    keeper.helper_alive = lambda pid: alive["helper"]
    assert keeper.check() == []
    alive["helper"] = False
    with caplog.at_level(logging.ERROR):
        assert keeper.check() == [rig.network.id]
    assert rig.proc.starts == 2
    assert "lost its lease-script helper" in caplog.text


def test_sh_networks_get_no_helper_check(tmp_open):  # noqa: F811
    rig = Rig(tmp_open)
    rig.add(1)
    rig.sync()
    rig.rec.keeper.helper_alive = lambda pid: False
    assert rig.rec.keeper.check() == []
    assert rig.proc.starts == 1


def test_daemon_expires_leases_dnsmasq_never_reports(tmp_open):  # noqa: F811
    rig = Rig(tmp_open, dhcp_lease_hook="lua", dhcp_lease_time=120)
    mac = rig.add(1)
    rig.sync()
    _lease(rig, mac)
    _age(rig, 120 + 29)  # within lease time + grace (30 s)
    rig.rec.poll()
    assert [str(x.address) for x in db_api.leases(rig.db, 1)] == [IP]
    _age(rig, 120 + 31)
    rig.rec.poll()  # checked at most every 10 s
    assert db_api.leases(rig.db, 1)
    rig.now += 10
    rig.rec.poll()
    assert db_api.leases(rig.db, 1) == []
    assert db_api.host_entries(rig.db, 1)  # allocated: still associated


def test_sh_networks_are_not_expired_by_the_daemon(tmp_open):  # noqa: F811
    rig = Rig(tmp_open, dhcp_lease_time=120)
    mac = rig.add(1)
    rig.sync()
    _lease(rig, mac)
    _age(rig, 10000)
    rig.now += 100
    rig.rec.poll()
    assert db_api.leases(rig.db, 1)  # dnsmasq (init + del) owns expiry


def test_hook_errors_are_reported_once(tmp_open, caplog):  # noqa: F811
    rig = Rig(tmp_open, dhcp_lease_hook="lua")
    rig.add(1)
    rig.sync()
    errors = os.path.join(rig.np, "nova-br100.hookerr")
    with open(errors, "a") as handle:
        handle.write("t1 add: not an Ethernet MAC and IPv4 address: x y\n")
        handle.write("t2 add: not an Ethernet MAC and IPv4 address: z w\n")
    with caplog.at_level(logging.WARNING):
        rig.rec.poll()
        rig.rec.poll()
    found = [r for r in caplog.records if "lease hook of br100" in r.message]
    assert len(found) == 1
    assert "2 errors" in found[0].message
    assert "z w" in found[0].message


def test_a_full_error_file_is_emptied_after_the_report(tmp_path, caplog):
    events = str(tmp_path / "nova-br100.events")
    guard = lease_guard.JournalGuard(events, "br100")
    errors = tmp_path / "nova-br100.hookerr"
    errors.write_text("x add: bad\n" * 4000)  # 44 KB > 32 KiB
    with caplog.at_level(logging.WARNING):
        guard.poll(_NoDnsmasq())
    assert "4000 errors" in caplog.text
    assert errors.stat().st_size == 0
    with open(errors, "a") as handle:  # the hook appends (O_APPEND)
        handle.write("y del: bad\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        guard.poll(_NoDnsmasq())
    assert "1 errors" in caplog.text
    assert "y del: bad" in caplog.text


class _NoDnsmasq:
    def pid(self) -> int | None:
        return None

    def reload(self, pid: int) -> None:
        raise AssertionError("no replay expected")


def test_expiry_waits_while_the_ingest_is_behind(tmp_open):  # noqa: F811
    """A backlog may hold the renewal that keeps a lease: no expiry
    until the ingest is within 256 KiB of the journal's end."""
    rig = Rig(tmp_open, dhcp_lease_hook="lua", dhcp_lease_time=120)
    mac = rig.add(1)
    rig.sync()
    _lease(rig, mac)
    _age(rig, 1000)
    events = plan.dnsmasq_paths(rig.np, "br100").events
    with open(events, "a") as handle:
        handle.write("\n" * (300 << 10))
    rig.rec.ingest_policy = leases.IngestPolicy(max_bytes=4096)
    rig.rec.poll()
    rig.rec.poll()
    assert db_api.leases(rig.db, 1)
    rig.rec.ingest_policy = leases.IngestPolicy()
    rig.rec.poll()  # caught up: expired at once (the check was not spent)
    assert db_api.leases(rig.db, 1) == []


def test_sharded_expiry_waits_for_every_shard_journal(tmp_open):  # noqa: F811
    """A sharded network's renewals are in several journals (one per
    shard): a backlog in ANY of them holds the expiry back."""
    rig = Rig(tmp_open, dhcp_lease_time=120)  # sh: the sync tracks none
    mac = rig.add(1)
    rig.sync()
    _lease(rig, mac)
    _age(rig, 1000)
    shard0 = os.path.join(rig.np, "nova-br100-s0.events")
    shard1 = os.path.join(rig.np, "nova-br100-s1.events")
    expiry = rig.rec.expiry
    expiry.track_journals(1, [shard0, shard1])
    expiry.poll(1, rig.now, rig.rec.tuning)  # arms: no expiry yet
    assert db_api.leases(rig.db, 1)
    rig.now += 120 + 30  # a lease time plus grace later
    with open(shard1, "a") as handle:
        handle.write("\n" * (300 << 10))  # shard 1's ingest is behind
    expiry.poll(1, rig.now, rig.rec.tuning)
    assert db_api.leases(rig.db, 1)
    leases.ingest_journal(rig.db, shard1, host=rig.rec.host)
    expiry.poll(1, rig.now, rig.rec.tuning)  # every journal caught up
    assert db_api.leases(rig.db, 1) == []
