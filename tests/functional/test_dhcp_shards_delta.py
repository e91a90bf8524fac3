# ruff: noqa: F811
"""A sharded network's sync reads and applies only the shards whose
generation moved (issue 12), through the real DhcpReconciler, SQLite,
real dnsmasq-lua shards in namespaces and busybox udhcpc clients (root
only). A spy records which shards each sync read from the database."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from flatnet.db import api
from flatnet.service import dhcp
from tests.db.conftest import make_instance
from tests.functional.dhcp_site import wait_for
from tests.functional.test_dhcp_shards_growth import (  # noqa: F401
    _plug,
    _sync,
    rig,
)
from tests.functional.test_dhcp_shards_lua import (
    _bind_three,
    _leftovers,
    _sharded,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def reads(monkeypatch) -> list:
    """For each shard_read of the reconciler: None for a full read, else
    the shards it read and how many hosts/removals it returned (the
    real function runs)."""
    real = api.shard_read
    seen: list = []

    def spy(db, network_id, since):
        read = real(db, network_id, since)
        rows = sum(len(v) for v in read.entries.values())
        rows += sum(len(v) for v in read.removed.values())
        seen.append(None if since is None else (set(since), rows))
        return read

    monkeypatch.setattr(dhcp.db_api, "shard_read", spy)
    return seen


def _files(shard) -> dict[str, float]:
    """Each file of a shard's hosts (main file and hostsdir) and its
    modification time: unchanged if the sync did not touch the shard."""
    paths = [shard.spec.paths.hosts]
    hostsdir = shard.spec.paths.hostsdir
    paths += [os.path.join(hostsdir, n) for n in sorted(os.listdir(hostsdir))]
    return {p: os.stat(p).st_mtime_ns for p in paths}


def _lines(shard) -> str:
    with open(shard.spec.paths.hosts, encoding="utf-8") as handle:
        text = handle.read()
    hostsdir = shard.spec.paths.hostsdir
    for name in sorted(os.listdir(hostsdir)):
        with open(os.path.join(hostsdir, name), encoding="utf-8") as handle:
            text += handle.read()
    return text


def _mac(info) -> str:
    return str(info.vif.address).replace("-", ":").lower()


def _three(rig, make_netns):
    """3 hosts over 2 shards (dhcp_shard_hosts = 2): 2 on shard 0, 1 on
    shard 1; every client bound."""
    return _bind_three(rig, make_netns, mac_base=0x7A0010)


def test_first_sync_is_a_full_read_then_only_changed_shards(
    rig, make_netns, reads
):
    _infos, _clients, shards = _three(rig, make_netns)
    assert reads == [None]  # a daemon's first sync of the network
    assert _sync(rig)  # nothing changed: no shard read
    assert reads[-1] == (set(), 0)


def test_a_new_host_is_read_written_and_served_in_its_shard_only(
    rig, make_netns, reads
):
    _infos, _clients, shards = _three(rig, make_netns)
    untouched = _files(shards[0])
    fourth = make_instance(rig["db"], "vm3", rig["net"], mac=0x7A0020)
    assert _sync(rig)
    assert reads[-1] == ({1}, 1)  # its row in the least-loaded shard
    assert _files(shards[0]) == untouched
    assert _mac(fourth) in _lines(shards[1])
    assert _mac(fourth) not in _lines(shards[0])
    got = _plug(rig, make_netns, fourth.vif.address).bound()
    assert got["ip"] == str(fourth.address)
    assert got["serverid"] == str(shards[1].spec.address)
    assert fourth.vif.address in {
        e.mac
        for e in rig["rec"].sharded.shards_of(rig["net"].id)[1].hosts.values()
    }


def test_a_deleted_host_is_removed_and_its_lease_released_in_its_shard(
    rig, make_netns, reads
):
    infos, clients, shards = _three(rig, make_netns)
    db, rec = rig["db"], rig["rec"]
    owner = {e.address: e.shard for e in api.host_entries(db, rig["net"].id)}
    gone = next(i for i in infos if owner[i.address] == 0)
    kept = next(i for i in infos if owner[i.address] == 1)

    def leased() -> set:
        rec.poll()
        return {x.address for x in api.leases(db, rig["net"].id)}

    wait_for(lambda: gone.address in leased(), 20, "the lease recorded")
    untouched = _files(shards[1])
    api.deallocate_for_instance(db, gone.instance.uuid)
    assert _sync(rig)
    assert reads[-1] == ({0}, 1)  # its row (no longer a host)
    assert _files(shards[1]) == untouched
    assert _mac(gone) not in _lines(shards[0])
    # the stale lease is released by shard 0 (dhcp_release in its
    # namespace); its "del" reaches the database through the journal
    wait_for(lambda: gone.address not in leased(), 20, "the lease released")
    # while the release was in flight shard 0 was re-read; now settled
    assert _sync(rig)
    assert reads[-1] in ((set(), 0), ({0}, 0))
    assert _sync(rig)
    assert reads[-1] == (set(), 0)
    answer = clients[infos.index(kept)].renew(timeout=20)
    assert answer["event"] == "renew", answer


def test_a_restarted_daemon_reads_everything_and_loses_nothing(
    rig, make_netns, reads
):
    """kill -9 between the database write and the apply: the write is
    committed, nothing of it applied. A new daemon (a new reconciler:
    no memory, as after a restart) does the full read and serves it."""
    _infos, _clients, shards = _three(rig, make_netns)
    old = rig["rec"]
    late = make_instance(rig["db"], "vm3", rig["net"], mac=0x7A0030)
    old.close()  # the killed daemon never applied it
    new = dhcp.DhcpReconciler(old.db, old.host, old.settings, old._factory)
    new.tuning = old.tuning
    new.sharded.place(old.sharded.host_netns)
    new.prepare()
    rig["rec"] = new
    try:
        assert _sync(rig)
        assert reads[-1] is None
        restarted = {s.spec.index: s.proc.pid() for s in shards}
        served = new.sharded.shards_of(rig["net"].id)
        assert {s.spec.index: s.proc.pid() for s in served} == restarted
        got = _plug(rig, make_netns, late.vif.address).bound()
        assert got["ip"] == str(late.address)
    finally:
        new.close()


def _restarted(rig) -> dhcp.DhcpReconciler:
    """A new daemon's reconciler (no memory of the old one, which is
    closed: its keeper thread stops, its dnsmasq keep running)."""
    old = rig["rec"]
    old.close()
    new = dhcp.DhcpReconciler(old.db, old.host, old.settings, old._factory)
    new.tuning = old.tuning
    new.sharded.place(old.sharded.host_netns)
    new.prepare()
    rig["rec"] = new
    return new


def test_shards_of_a_network_deleted_while_no_daemon_ran_are_removed(rig):
    names, veths, infos = _sharded(rig)
    db = rig["db"]
    rig["rec"].close()  # the daemon stops; its shards keep running
    for info in infos:
        api.deallocate_for_instance(db, info.instance.uuid)
    api.network_delete(db, rig["net"].uuid)
    assert len(_leftovers(rig, names, veths)) == 10
    new = _restarted(rig)
    try:
        new.poll()  # the first poll of the new daemon
        assert _leftovers(rig, names, veths) == []
    finally:
        new.close()


def test_shards_of_a_network_moved_away_are_removed_served_ones_kept(rig):
    names, veths, _infos = _sharded(rig)
    new = _restarted(rig)
    try:
        new.poll()  # still served here: nothing removed
        assert len(_leftovers(rig, names, veths)) == 10
        api.network_set_host(rig["db"], rig["net"].id, "another-host")
        newer = _restarted(rig)
        newer.poll()
        assert _leftovers(rig, names, veths) == []
    finally:
        rig["rec"].close()


def _daemon(rig) -> subprocess.Popen:
    spec = {
        "db": str(rig["db"].url),
        "networks_path": rig["rec"].settings.networks_path,
        "host": rig["host"],
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.functional.shard_reconciler"]
        + [json.dumps(spec)],
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _ready(rig) -> bool:
    db, net = rig["db"], rig["net"]
    wanted = api.network_generations(db)[net.id]
    return api.host_state_get(db, "nethost", net.id, "dhcp") >= wanted


def test_kill_9_of_a_daemon_process_after_a_write_loses_nothing(
    rig, make_netns
):
    """A real daemon process (loop, reconciler) is stopped right after
    an allocation is committed and before it applies it, then SIGKILLed;
    the next daemon process reads everything and serves the host."""
    db, net = rig["db"], rig["net"]
    for i in range(3):
        make_instance(db, f"vm{i}", net, mac=0x7A0040 + i)
    rig["rec"].close()  # the test's own reconciler stays out of the way
    first = _daemon(rig)
    try:
        wait_for(lambda: _ready(rig), 30, "the first daemon ready")
        first.send_signal(signal.SIGSTOP)  # no apply from now on
        late = make_instance(db, "vm3", net, mac=0x7A0050)
        first.kill()
        first.wait(timeout=10)
        assert not _ready(rig)  # committed, never applied
        second = _daemon(rig)
        try:
            wait_for(lambda: _ready(rig), 30, "the next daemon ready")
        finally:
            second.kill()
            second.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    got = _plug(rig, make_netns, late.vif.address).bound()
    assert got["ip"] == str(late.address)
