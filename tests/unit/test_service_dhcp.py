"""service/dhcp.py with FakeDnsmasq on a real SQLite database."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import netaddr
import pytest

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.model import LeaseEvent
from flatnet.plan import dnsmasq as plan
from flatnet.service import dhcp, leases
from tests.fakes_dnsmasq import (
    FakeDnsmasq,
    FakeProcessTable,
    FakeRelease,
    new_db,
    new_instance,
    new_network,
)


@pytest.fixture
def tmp_open():
    """A tmp dir dnsmasq (as 'nobody') could traverse: pytest's tmp_path
    sits under a 0700 directory, which the reconciler refuses."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="fnudhcp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class InitRecordingDnsmasq(FakeDnsmasq):
    """FakeDnsmasq that records the init snapshot present at start,
    the way the real one's ``init`` hook would read it."""

    fail_start = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init_seen: list[str | None] = []

    def start(self, argv: list[str]) -> int:
        try:
            with open(self.paths.init) as handle:
                self.init_seen.append(handle.read())
        except FileNotFoundError:
            self.init_seen.append(None)
        if self.fail_start:
            raise exception.DnsmasqError(bridge=self.bridge, reason="boom")
        return super().start(argv)


NO_THREAD = dhcp.DhcpTuning(keeper_interval=0)


class Rig:
    def __init__(self, tmp_open, **settings: object) -> None:
        self.db = new_db(tmp_open)
        self.network = new_network(self.db)
        self.np = str(tmp_open / "networks")
        self.table = FakeProcessTable()
        self.procs: dict[str, InitRecordingDnsmasq] = {}
        self.release = FakeRelease()
        values: dict[str, object] = {
            "networks_path": self.np,
            "dhcpbridge": "/usr/bin/flatnet-dhcpbridge",
        }
        values.update(settings)
        self.rec = dhcp.DhcpReconciler(
            self.db,
            "nethost",
            plan.DhcpSettings(**values),  # type: ignore[arg-type]
            self._factory,
            release=self.release,
        )
        self.rec.tuning = NO_THREAD
        self.rec.prepare()
        self.now = 0.0
        self.rec.clock = lambda: self.now

    def _factory(self, bridge, paths):
        proc = self.procs.get(bridge)
        if proc is None:
            proc = InitRecordingDnsmasq(bridge, paths, self.table)
            self.procs[bridge] = proc
        return proc

    @property
    def proc(self) -> InitRecordingDnsmasq:
        return self.procs["br100"]

    def sync(self) -> bool:
        network = db_api.network_get(self.db, str(self.network.id))
        return self.rec.sync_network(network)

    def add(self, n: int) -> str:
        mac = f"fa:16:3e:00:{n >> 8:02x}:{n & 0xFF:02x}"
        new_instance(self.db, self.network, f"vm{n}", mac)
        return mac

    def hostsdir(self) -> list[str]:
        return sorted(os.listdir(os.path.join(self.np, "nova-br100.d")))


def test_first_sync_starts_dnsmasq_with_all_hosts_in_main_file(tmp_open):
    rig = Rig(tmp_open)
    mac = rig.add(1)
    assert rig.sync() is True
    assert rig.proc.starts == 1
    assert rig.proc.reloads == 0
    assert rig.proc.loaded == {mac: f"{mac},vm1.novalocal,10.210.0.2"}
    assert rig.hostsdir() == []
    hook = os.path.join(rig.np, "flatnet-dhcp-script")
    assert os.stat(hook).st_mode & 0o777 == 0o755
    assert os.stat(
        os.path.join(rig.np, "nova-br100.conf")
    ).st_mode & 0o777 == (0o644)


def test_new_hosts_go_live_through_hostsdir_without_hup(tmp_open):
    rig = Rig(tmp_open)
    rig.sync()
    macs = [rig.add(n) for n in range(1, 201)]  # a burst of 200
    assert rig.sync() is True
    assert rig.proc.reloads == 0
    assert rig.proc.starts == 1
    assert set(rig.proc.loaded) == set(macs)
    # one file per batch of hostsdir_batch (16): one inotify event each
    assert len(rig.hostsdir()) == 13


def test_slow_batches_switch_to_the_big_batch_size(tmp_open):
    rig = Rig(tmp_open)
    rig.sync()
    for n in range(1, 101):
        rig.add(n)
    # always slow
    rig.rec.tuning = dhcp.DhcpTuning(keeper_interval=0, slow_batch=-1.0)
    rig.sync()
    # first batch 16 (not known slow yet), then all 84 left in one file
    assert len(rig.hostsdir()) == 2
    assert len(rig.proc.loaded) == 100


def test_hostsdir_batches_are_one_file_each_probed_in_turn(tmp_open):
    rig = Rig(tmp_open)
    rig.rec.tuning = dhcp.DhcpTuning(keeper_interval=0, hostsdir_batch=16)
    rig.sync()
    macs = [rig.add(n) for n in range(1, 41)]
    assert rig.sync() is True
    assert rig.hostsdir() == [
        "fa-16-3e-00-00-01",
        "fa-16-3e-00-00-11",
        "fa-16-3e-00-00-21",
    ]
    first = os.path.join(rig.np, "nova-br100.d", "fa-16-3e-00-00-01")
    with open(first) as handle:
        lines = handle.read().splitlines()
    assert [x.split(",")[0] for x in lines] == macs[:16]
    assert rig.proc.reloads == 0
    assert set(rig.proc.loaded) == set(macs)


def test_hostsdir_mode_makes_every_name_a_hosts_entry(tmp_open):
    rig = Rig(tmp_open)
    rig.add(1)
    rig.sync()
    rig.add(2)
    rig.sync()
    addn = os.path.join(rig.np, "nova-br100.hosts")
    with open(addn) as handle:
        assert handle.read() == "10.210.0.2\tvm1.novalocal\tvm1\n"
    new = os.path.join(rig.np, "nova-br100.hd", "fa-16-3e-00-00-02")
    with open(new) as handle:
        assert handle.read() == "10.210.0.3\tvm2.novalocal\tvm2\n"
    rig.rec.tuning = dhcp.DhcpTuning(keeper_interval=0, compact_files=0)
    rig.add(3)
    rig.sync()  # compaction: both directories emptied, one HUP
    assert os.listdir(os.path.join(rig.np, "nova-br100.hd")) == []
    with open(addn) as handle:
        assert handle.read().count("\n") == 3
    assert rig.proc.reloads == 1


def test_without_hostsdir_no_addn_hosts_for_single_host(tmp_open):
    rig = Rig(tmp_open, dhcp_hostsdir=False)
    rig.add(1)
    rig.sync()
    assert not os.path.exists(os.path.join(rig.np, "nova-br100.hosts"))


def test_nothing_changed_means_no_write_and_no_hup(tmp_open):
    rig = Rig(tmp_open, dhcp_hostsdir=False)
    rig.add(1)
    rig.sync()
    conf = os.path.join(rig.np, "nova-br100.conf")
    before = os.stat(conf).st_ino
    rig.sync()
    assert rig.proc.reloads == 0
    assert os.stat(conf).st_ino == before


def test_without_hostsdir_a_batch_costs_one_hup(tmp_open):
    rig = Rig(tmp_open, dhcp_hostsdir=False)
    rig.sync()
    for n in range(1, 51):
        rig.add(n)
    rig.sync()
    assert rig.proc.reloads == 1
    assert len(rig.proc.loaded) == 50


def test_too_many_hostsdir_files_are_compacted_with_one_hup(tmp_open):
    rig = Rig(tmp_open)
    rig.rec.tuning = dhcp.DhcpTuning(keeper_interval=0, compact_files=10)
    rig.sync()
    for n in range(1, 12):
        rig.add(n)
    rig.sync()
    assert rig.proc.reloads == 1
    assert rig.hostsdir() == []
    assert len(rig.proc.loaded) == 11


def _lease(rig: Rig, action: str, mac: str, ip: str) -> None:
    path = plan.dnsmasq_paths(rig.np, "br100").events
    leases.record_event(
        path, LeaseEvent(action, netaddr.EUI(mac), netaddr.IPAddress(ip))
    )
    rig.rec.poll()


def test_deallocate_compacts_hups_and_releases_until_del_arrives(tmp_open):
    rig = Rig(tmp_open)
    rig.sync()
    mac = rig.add(1)
    other = rig.add(2)
    rig.sync()
    _lease(rig, "add", mac, "10.210.0.2")
    uuid = db_api.instance_get(rig.db, "vm1").uuid
    db_api.deallocate_for_instance(rig.db, uuid)
    rig.sync()
    assert rig.proc.reloads == 1
    assert rig.hostsdir() == []
    assert set(rig.proc.loaded) == {other}  # dnsmasq forgot vm1
    assert rig.release.sent == [("br100", "10.210.0.2", mac)]
    # still associated: the address cannot go to a new MAC yet
    fixed = {str(f.address): f for f in db_api.fixed_ip_list(rig.db)}
    assert fixed["10.210.0.2"].instance_uuid == uuid
    _lease(rig, "del", mac, "10.210.0.2")  # dnsmasq confirms the release
    assert rig.rec.state(rig.network.id).releases == {}
    fixed = {str(f.address): f for f in db_api.fixed_ip_list(rig.db)}
    assert fixed["10.210.0.2"].instance_uuid is None


def test_release_is_retried_three_times_at_most(tmp_open):
    rig = Rig(tmp_open)
    mac = rig.add(1)
    rig.sync()
    _lease(rig, "add", mac, "10.210.0.2")
    db_api.deallocate_for_instance(
        rig.db, db_api.instance_get(rig.db, "vm1").uuid
    )
    rig.sync()
    for _ in range(10):
        rig.now += 1.0
        rig.rec.poll()
    assert len(rig.release.sent) == 3


def test_changed_argv_restarts_and_foreign_pid_is_left_alone(tmp_open):
    rig = Rig(tmp_open)
    rig.sync()
    first = rig.proc.pid()
    rig.rec.settings = plan.DhcpSettings(
        networks_path=rig.np, dhcpbridge="/x", dhcp_lease_time=600
    )
    rig.sync()
    assert rig.proc.stops == 1
    assert rig.proc.pid() != first
    assert any(a.endswith(",600s") for a in rig.table.running[rig.proc.pid()])


def test_poll_reports_a_dead_dnsmasq(tmp_open):
    rig = Rig(tmp_open)
    rig.sync()
    key = db_api.network_key(rig.network.id)
    assert rig.rec.poll().dirty == frozenset()
    rig.proc.kill()
    assert rig.rec.poll().dirty == {key}
    rig.sync()
    assert rig.proc.starts == 2


def test_restarted_daemon_adopts_state_from_files(tmp_open):
    rig = Rig(tmp_open)
    rig.sync()
    rig.add(1)
    rig.sync()  # vm1 is a hostsdir file now
    table = rig.table
    again = Rig.__new__(Rig)
    again.__dict__.update(rig.__dict__)
    again.rec = dhcp.DhcpReconciler(
        rig.db,
        "nethost",
        rig.rec.settings,
        rig._factory,
        release=rig.release,
    )
    assert again.sync() is True
    assert rig.proc.starts == 1
    assert rig.proc.reloads == 0
    assert table.running  # same process kept


@pytest.mark.parametrize("host", ["otherhost"])
def test_networks_of_other_hosts_are_not_served(tmp_open, host):
    rig = Rig(tmp_open)
    db_api.network_set_host(rig.db, rig.network.id, host)
    assert rig.sync() is True
    assert "br100" not in rig.procs


def test_start_writes_the_init_snapshot_first_and_removes_it_after(tmp_open):
    rig = Rig(tmp_open)
    rig.rec.keeper.wallclock = lambda: 1000.0
    mac = rig.add(1)
    rig.sync()
    assert rig.proc.init_seen == [""]  # nothing leased yet
    # a lease event still only in the journal (not polled) when dnsmasq
    # dies: the restart ingests it before writing the snapshot
    path = plan.dnsmasq_paths(rig.np, "br100").events
    leases.record_event(
        path,
        LeaseEvent("add", netaddr.EUI(mac), netaddr.IPAddress("10.210.0.2")),
    )
    rig.proc.kill()
    assert rig.sync() is True
    assert rig.proc.init_seen[-1] == f"87400 {mac} 10.210.0.2 vm1 *\n"
    assert not os.path.exists(os.path.join(rig.np, "nova-br100.init"))
    assert rig.proc.starts == 2


def test_no_snapshot_without_the_fast_path(tmp_open):
    rig = Rig(tmp_open, dhcp_script_fast_path=False)
    rig.add(1)
    rig.sync()
    assert rig.proc.init_seen == [None]


def test_snapshot_is_removed_when_the_start_fails(tmp_open):
    rig = Rig(tmp_open)
    rig.add(1)
    rig._factory("br100", plan.dnsmasq_paths(rig.np, "br100"))
    rig.proc.fail_start = True
    with pytest.raises(exception.DnsmasqError):
        rig.sync()
    assert rig.proc.init_seen == [""]
    assert not os.path.exists(os.path.join(rig.np, "nova-br100.init"))


def test_closed_parent_directory_fails_loudly_before_start(tmp_open):
    closed = tmp_open / "private"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    rig = Rig(tmp_open, networks_path=str(closed / "state" / "networks"))
    with pytest.raises(exception.ConfigError) as info:
        rig.sync()
    assert f"chmod o+x {closed}" in str(info.value)
    assert rig.rec.keeper.check() == []  # nor does the keeper start it
    assert rig.proc.starts == 0
    closed.chmod(0o711)  # the fix the message names
    assert rig.sync() is True
    assert rig.proc.starts == 1


def test_networks_path_is_created_0755_whatever_the_umask(tmp_open):
    old = os.umask(0o077)
    try:
        rig = Rig(tmp_open)
        rig.add(1)
        rig.sync()
    finally:
        os.umask(old)
    for name in ("", "nova-br100.d", "nova-br100.hd"):
        mode = os.stat(os.path.join(rig.np, name)).st_mode & 0o777
        assert mode == 0o755, name


def _restarted(rig: Rig) -> dhcp.DhcpReconciler:
    rec = dhcp.DhcpReconciler(
        rig.db, "nethost", rig.rec.settings, rig._factory, release=rig.release
    )
    rec.tuning = NO_THREAD
    return rec


@pytest.mark.parametrize("hostsdir", [True, False])
def test_crash_before_the_hup_is_healed_by_the_next_daemon(tmp_open, hostsdir):
    rig = Rig(tmp_open, dhcp_hostsdir=hostsdir)
    gone = rig.add(1)
    rig.sync()
    db_api.deallocate_for_instance(
        rig.db, db_api.instance_get(rig.db, "vm1").uuid
    )
    real_reload = rig.proc.reload

    def crash(pid: int) -> None:  # the daemon dies before the HUP
        raise KeyboardInterrupt

    rig.proc.reload = crash
    with pytest.raises(KeyboardInterrupt):
        rig.sync()
    marker = os.path.join(rig.np, "nova-br100.pending")
    assert os.path.exists(marker)
    assert gone in rig.proc.loaded  # dnsmasq still serves the old file
    rig.proc.reload = real_reload
    rig.rec = _restarted(rig)  # a new daemon: files on disk are current
    assert rig.sync() is True
    assert gone not in rig.proc.loaded
    assert not os.path.exists(marker)
    reloads = rig.proc.reloads
    rig.rec = _restarted(rig)
    rig.sync()
    assert rig.proc.reloads == reloads  # no marker, no needless HUP


def test_prepare_removes_what_a_killed_daemon_left(tmp_open):
    rig = Rig(tmp_open)
    rig.add(1)
    rig.sync()
    np = pathlib.Path(rig.np)
    leftovers = [
        np / ".nova-br100.conf.ab1_x9zz",
        np / ".nova-br100.hosts.0000aaaa",
        np / ".flatnet-dhcp-script.k2k2k2k2",
        np / "nova-br100.d" / ".fa-16-3e-00-00-09.qwertyui",
        np / "nova-br100.hd" / ".fa-16-3e-00-00-09.qwertyui",
        np / "nova-br100.init",
    ]
    kept = [np / ".keep-me.abcdefgh", np / "nova-br100.conf", np / ".x"]
    for path in leftovers + kept[::2]:
        path.write_text("stale\n")
    rig.rec.prepare()
    assert [p for p in leftovers if p.exists()] == []
    assert all(p.exists() for p in kept)


def test_keeper_restarts_a_dead_dnsmasq_without_the_database(tmp_open):
    rig = Rig(tmp_open)
    mac = rig.add(1)
    rig.sync()
    _lease(rig, "add", mac, "10.210.0.2")
    rig.rec.keeper.wallclock = lambda: 1000.0
    rig.db.dispose()
    rig.db.engine = None  # any database access would raise now
    rig.proc.kill()
    assert rig.rec.keeper.check() == [rig.network.id]
    assert rig.proc.starts == 2
    assert rig.proc.init_seen[-1] == f"87400 {mac} 10.210.0.2 vm1 *\n"
    assert mac in rig.proc.loaded  # the files on disk
    assert not os.path.exists(os.path.join(rig.np, "nova-br100.init"))
    assert rig.rec.keeper.check() == []  # alive: nothing to do
    assert rig.rec.keeper.restarted() == {rig.network.id}


def test_keeper_starts_without_snapshot_on_a_full_disk(tmp_open, monkeypatch):
    rig = Rig(tmp_open)
    rig.add(1)
    rig.sync()
    rig.proc.kill()

    def full(path, *args, **kwargs):
        raise exception.HostNetworkError(reason=f"{path}: No space left")

    monkeypatch.setattr(dhcp.files, "replace_file", full)
    assert rig.rec.keeper.check() == [rig.network.id]
    assert rig.proc.init_seen[-1] is None  # the hook asks the database
    assert rig.proc.pid() is not None


def test_keeper_leaves_a_network_alone_while_the_loop_holds_it(tmp_open):
    rig = Rig(tmp_open)
    rig.sync()
    rig.proc.kill()
    with rig.rec.keeper.lock(rig.network.id):
        assert rig.rec.keeper.check() == []
    assert rig.rec.keeper.check() == [rig.network.id]
