# ruff: noqa: F811
"""Shards record lease events with the Lua hook (no fork per event),
through the real DhcpReconciler and database: real dnsmasq-lua shards in
namespaces of their own, busybox udhcpc clients (root only)."""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import subprocess

import pytest

from flatnet.db import api
from flatnet.linux import dnsmasq_helper, journal, netlink
from flatnet.service.dhcp_keeper import DhcpTuning
from tests.db.conftest import make_instance
from tests.functional import netns
from tests.functional.dhcp_site import wait_for
from tests.functional.test_dhcp_shards_growth import (  # noqa: F401
    _plug,
    _sync,
    rig,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _argv(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return [a.decode() for a in handle.read().split(b"\0") if a]


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [x for x in handle.read().splitlines() if x]
    except FileNotFoundError:
        return []


def _leased(rig) -> set[str]:
    return {str(x.address) for x in api.leases(rig["db"], rig["net"].id)}


def _bind_three(rig, make_netns, mac_base=0x790010):
    """Three hosts (> dhcp_shard_hosts = 2): two shards from the start
    (2 on shard 0, 1 on shard 1); every client bound."""
    db, net = rig["db"], rig["net"]
    infos = [
        make_instance(db, f"vm{i}", net, mac=mac_base + i) for i in range(3)
    ]
    assert _sync(rig)
    shards = rig["rec"].sharded.shards_of(net.id)
    assert len(shards) == 2
    clients = [_plug(rig, make_netns, i.vif.address) for i in infos]
    for client in clients:
        client.bound()
    return infos, clients, shards


def _serve_three(rig, make_netns):
    """:func:`_bind_three`, then every lease in the database."""
    infos, clients, shards = _bind_three(rig, make_netns)
    want = {str(i.address) for i in infos}

    def recorded() -> bool:
        rig["rec"].poll()
        return _leased(rig) == want

    wait_for(recorded, 20, "every lease in the database")
    return infos, clients, shards


def test_shard_events_reach_the_database_exactly_once(rig, make_netns):
    infos, _clients, shards = _serve_three(rig, make_netns)
    owner = {
        e.mac: e.shard for e in api.host_entries(rig["db"], rig["net"].id)
    }
    for shard in shards:
        pid = shard.proc.pid()
        assert pid is not None
        argv = _argv(pid)
        assert any(a.startswith("--dhcp-luascript=") for a in argv)
        assert not any(a.startswith("--dhcp-script=") for a in argv)
        assert "--dhcp-authoritative" in argv
        assert dnsmasq_helper.has_helper(pid)  # the Lua helper, no forks
        events = shard.spec.paths.events
        for path in (events, journal.loss_path(events)):  # prepared 0600
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        mine = [i for i in infos if owner[i.vif.address] == shard.spec.index]
        adds = [x for x in _lines(events) if x.startswith("add ")]
        # one add per own client, none of another shard's
        assert sorted(adds) == sorted(
            f"add {str(i.vif.address).lower().replace('-', ':')} {i.address}"
            for i in mine
        )
        # the ingest consumed every byte of the journal, once
        found = journal.end(events)
        stored = api.journal_offset(rig["db"], events, host="nethost")
        assert found is not None
        assert stored == found
    assert rig["rec"].expiry.journals[rig["net"].id][1:] == tuple(
        s.spec.paths.events for s in shards
    )


def test_kill_9_of_a_shard_loses_nothing_and_renewals_get_no_nak(
    rig, make_netns
):
    infos, clients, shards = _serve_three(rig, make_netns)
    rec = rig["rec"]
    victim = shards[0]
    pid = victim.proc.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: victim.proc.pid() is None, 5, "shard 0 gone")
    assert rec.keeper.check()  # what the keeper thread does every 50 ms
    new = victim.proc.pid()
    assert new is not None
    assert new != pid
    assert dnsmasq_helper.has_helper(new)
    before = {s.spec.index: len(_lines(s.spec.paths.events)) for s in shards}
    for client in clients:
        answer = client.renew(timeout=20)
        assert answer["event"] == "renew", answer
        assert not [e for e in client.events() if e["event"] == "nak"]
    # the restarted shard knew no lease: it ACKed as authoritative and
    # journalled the renewals (add); the database never lost a lease
    new_lines = _lines(victim.spec.paths.events)[before[0] :]
    assert new_lines
    assert all(x.split()[0] in ("add", "old") for x in new_lines), new_lines
    rec.poll()
    assert _leased(rig) == {str(i.address) for i in infos}


def test_lost_shard_events_are_polled_and_replayed(rig, make_netns):
    """A record a shard's hook could not write (a full disk) is counted
    in that shard's ``.lost``; the daemon's poll sees it and HUPs the
    shard, which replays its leases (``old``) into its journal."""
    _infos, _clients, shards = _serve_three(rig, make_netns)
    rec = rig["rec"]
    shard = shards[1]
    events = shard.spec.paths.events
    lost = journal.loss_path(events)
    journal.count_lost(lost)  # what the hook does when a write fails
    assert journal.read_losses(lost).pending == 1
    before = len(_lines(events))
    rec.poll()
    assert journal.read_losses(lost).pending == 0
    wait_for(
        lambda: any(x.startswith("old ") for x in _lines(events)[before:]),
        10,
        "the shard's leases replayed",
    )


def test_a_shard_that_lost_its_lua_helper_is_restarted(rig, make_netns):
    _serve_three(rig, make_netns)
    rec = rig["rec"]
    rec.tuning = DhcpTuning(keeper_interval=0)
    shard = rec.sharded.shards_of(rig["net"].id)[0]
    pid = shard.proc.pid()
    assert pid is not None
    assert dnsmasq_helper.has_helper(pid)
    helpers = dnsmasq_helper.children(pid) or []  # --port=0: the helper
    for child in helpers:  # what an error escaping lease() does
        os.kill(child, signal.SIGKILL)
    wait_for(lambda: not dnsmasq_helper.has_helper(pid), 5, "helper gone")
    assert rec.keeper.check()
    new = shard.proc.pid()
    assert new is not None
    assert new != pid
    assert dnsmasq_helper.has_helper(new)


def _leftovers(rig, names: list[str], veths: list[str]) -> list[str]:
    """Namespaces, veths, the nft table and dnsmasq processes of the
    network's shards that still exist."""
    found = [n for n in names if netlink.netns_exists(n)]
    links = netns.run(["ip", "-o", "link"], rig["host"]).stdout
    found += [v for v in veths if f" {v}@" in links or f" {v}:" in links]
    tables = netns.run(["nft", "list", "tables"], rig["host"]).stdout
    if f"flatnet_{rig['bridge']}" in tables:
        found.append("nft table")
    ps = subprocess.run(
        ["pgrep", "-af", f"nova-{rig['bridge']}-"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    found += [line for line in ps.splitlines() if "dnsmasq" in line]
    return found


def _sharded(rig) -> tuple[list[str], list[str], list]:
    db, net = rig["db"], rig["net"]
    infos = [
        make_instance(db, f"vm{i}", net, mac=0x790020 + i) for i in range(3)
    ]
    assert _sync(rig)
    shards = rig["rec"].sharded.shards_of(net.id)
    assert len(shards) == 2
    names = [s.spec.netns for s in shards]
    veths = [s.spec.veth for s in shards]
    # 2 namespaces, 2 veths, the table, 2 shards + helpers and the DNS one
    assert len(_leftovers(rig, names, veths)) == 2 + 2 + 1 + 5
    return names, veths, infos


def test_a_network_no_longer_served_here_loses_its_shards(rig):
    names, veths, _infos = _sharded(rig)
    network = api.network_get(rig["db"], rig["net"].id)
    elsewhere = dataclasses.replace(network, host="another-host")
    assert rig["rec"].sync_network(elsewhere)
    assert _leftovers(rig, names, veths) == []
    assert rig["net"].id not in rig["rec"].expiry.due


def test_a_deleted_network_loses_its_shards(rig):
    names, veths, infos = _sharded(rig)
    db = rig["db"]
    for info in infos:
        api.deallocate_for_instance(db, info.instance.uuid)
    api.network_delete(db, rig["net"].uuid)
    rig["rec"].poll()
    assert _leftovers(rig, names, veths) == []
