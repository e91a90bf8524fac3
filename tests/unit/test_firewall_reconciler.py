"""The compute firewall reconciler over fakes: one key per instance,
one iptables commit per batch, fail closed per instance, drift repair,
and the database read it relies on."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.db import api
from flatnet.linux.conntrack import Entry
from flatnet.plan.firewall import FirewallSettings
from flatnet.plan.nwfilter import instance_filter_name
from flatnet.service.daemon import Daemon, DaemonTiming
from flatnet.service.firewall import FirewallReconciler, NWFilters, host_key
from tests import secgroup_rows as sg
from tests.db.conftest import make_instance, make_network
from tests.fakes_ipset import FakeIpset
from tests.fakes_iptables import FakeIptables
from tests.fakes_nwfilter import FakeNWFilter

CHAIN = "nova-compute-inst-{}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flows:
    def __init__(self) -> None:
        self.deleted: list[object] = []
        self.live: list[Entry] = []
        self.cut: list[Entry] = []

    def delete_many(self, flows: list[object]) -> int:
        self.deleted += flows
        return len(flows)

    def list(self) -> list[Entry]:
        return list(self.live)

    def delete_entries(self, entries: list[Entry]) -> int:
        self.cut += entries
        return len(entries)


class Site:
    def __init__(self, db: api.Database, nwfilter: FakeNWFilter | None):
        self.db = db
        self.iptables = FakeIptables()
        self.ipsets = FakeIpset("nova-compute")
        self.flows = Flows()
        self.clock = Clock()
        libvirt = None if nwfilter is None else NWFilters(lambda: nwfilter)
        self.rec = FirewallReconciler(
            db, "h1", FirewallSettings(),
            ipsets=self.ipsets, iptables=self.iptables, conntrack=self.flows,
            nwfilters=libvirt,
        )  # fmt: skip
        self.rec.clock = self.clock
        self.daemon = Daemon(
            db, "h1", [self.rec], DaemonTiming(periodic_interval=1e9)
        )
        self.daemon.clock = self.clock

    def chain(self, instance_id: int) -> list[str]:
        return self.iptables.tables["filter"].get(CHAIN.format(instance_id))

    def state(self, key: str) -> api.KeyState | None:
        return api.host_state(self.db, "h1", "firewall", key)


@pytest.fixture
def db(tmp_path):
    database = api.Database(f"sqlite:///{tmp_path}/f.sqlite")
    api.sync(database)
    yield database
    database.dispose()


@pytest.fixture
def net(db):
    return make_network(db)


def test_one_commit_for_a_batch_and_one_key_per_instance(db, net) -> None:
    web = sg.add_group(db, "web")
    sg.add_rule(db, web, "tcp", (80, 80))
    site = Site(db, None)
    site.daemon.run_once()  # the frame: one restore per table
    before = site.iptables.commits
    infos = [make_instance(db, f"vm{i}", net, i, host="h1") for i in range(20)]
    for info in infos:
        sg.associate(db, web, info.instance.uuid)
    make_instance(db, "elsewhere", net, 99, host="h2")
    site.daemon.run_once()
    assert site.iptables.commits == before + 1  # 20 instances, one commit
    assert site.rec.commits == 2
    generation = api.firewall_generation(db)
    for info in infos:
        key = api.instance_key(info.instance.uuid)
        assert site.state(key).applied_generation == generation
        chain = site.chain(info.instance.id)
        assert "-p tcp -m tcp --dport 80 -j ACCEPT" in " ".join(chain)
        assert chain[-1] == "-j nova-compute-sg-fallback"
    assert site.state(host_key("h1")).applied_generation == generation
    keys = api.generations(db)  # no key for h2's instance
    assert all("elsewhere" not in k for k in keys)
    filt = site.iptables.tables["filter"]
    assert sum(1 for c in filt if c.startswith("nova-compute-inst-")) == 20
    site.daemon.run_once()
    assert site.iptables.commits == before + 1  # nothing moved: no work


def test_rule_added_later_reaches_the_instance(db, net) -> None:
    web = sg.add_group(db, "web")
    vm = make_instance(db, "vm1", net, 1, host="h1").instance
    sg.associate(db, web, vm.uuid)
    site = Site(db, None)
    site.daemon.run_once()
    assert "--dport 443" not in " ".join(site.chain(vm.id))
    rule = sg.add_rule(db, web, "tcp", (443, 443), cidr="10.9.0.0/16")
    site.daemon.run_once()
    assert "-s 10.9.0.0/16 -p tcp -m tcp --dport 443 -j ACCEPT" in (
        site.chain(vm.id)
    )
    sg.delete_rule(db, rule)
    site.daemon.run_once()
    assert "--dport 443" not in " ".join(site.chain(vm.id))
    cut = [f for f in site.flows.deleted if f.dport == 443]
    assert cut  # the flows it allowed are cut
    assert str(cut[0].orig_src) == "10.9.0.0/16"


def test_source_group_is_a_set_and_delete_removes_everything(db, net) -> None:
    web = sg.add_group(db, "web")
    sg.add_rule(db, web, "tcp", (22, 22), source_group=web)
    vm1 = make_instance(db, "vm1", net, 1, host="h1")
    vm2 = make_instance(db, "vm2", net, 2, host="h2")  # remote member
    for info in (vm1, vm2):
        sg.associate(db, web, info.instance.uuid)
    site = Site(db, None)
    site.daemon.run_once()
    name = f"nova-compute-sg-{web}"
    members = {str(i.address) for i in (vm1, vm2)}
    assert site.ipsets.sets[name].members == members
    assert f"--match-set {name} src" in " ".join(site.chain(vm1.instance.id))
    api.deallocate_for_instance(db, vm1.instance.uuid)
    site.daemon.run_once()
    assert site.chain(vm1.instance.id) is None
    assert name not in site.ipsets.sets  # no instance here uses it
    assert site.iptables.tables["filter"]["nova-compute-local"] == []


def test_an_instance_whose_nwfilter_fails_is_not_live(db, net) -> None:
    class Refusing(FakeNWFilter):
        refuse = ""

        def define(self, xml: str) -> str:
            if self.refuse and self.refuse in xml:
                raise exception.NWFilterError(
                    name=self.refuse, code=1, reason="disk on fire"
                )
            return super().define(xml)

    libvirt = Refusing()
    good = make_instance(db, "vm1", net, 1, host="h1")
    bad = make_instance(db, "vm2", net, 2, host="h1")
    libvirt.refuse = instance_filter_name(
        f"instance-{bad.instance.id:08x}", bad.vif.address
    )
    site = Site(db, libvirt)
    site.daemon.run_once()
    bad_state = site.state(api.instance_key(bad.instance.uuid))
    assert bad_state.applied_generation == 0
    assert "disk on fire" in bad_state.last_error
    assert libvirt.refuse in bad_state.last_error
    good_state = site.state(api.instance_key(good.instance.uuid))
    assert good_state.applied_generation == api.firewall_generation(db)
    good_name = instance_filter_name(
        f"instance-{good.instance.id:08x}", good.vif.address
    )
    assert good_name in libvirt.filters
    assert {"nova-base", "nova-nodhcp"} <= set(libvirt.filters)
    libvirt.refuse = ""  # fixed: the retry (after back-off) makes it live
    site.clock.now += 60
    site.daemon.run_once()
    bad_state = site.state(api.instance_key(bad.instance.uuid))
    assert bad_state.applied_generation == api.firewall_generation(db)
    assert bad_state.last_error is None


def test_periodic_verify_repairs_drift(db, net) -> None:
    web = sg.add_group(db, "web")
    sg.add_rule(db, web, "tcp", (22, 22), source_group=web)
    vm = make_instance(db, "vm1", net, 1, host="h1")
    sg.associate(db, web, vm.instance.uuid)
    site = Site(db, None)
    site.daemon.run_once()
    wanted = list(site.chain(vm.instance.id))
    site.iptables.tables["filter"][CHAIN.format(vm.instance.id)] = []
    name = f"nova-compute-sg-{web}"
    site.ipsets.sets[name].members.clear()
    site.clock.now += 30
    site.daemon.run_once()
    assert site.chain(vm.instance.id) == []  # trusted cache until verify
    site.clock.now += 31
    site.daemon.run_once()
    assert site.chain(vm.instance.id) == wanted
    assert site.ipsets.sets[name].members == {str(vm.address)}


def test_host_firewall_reads_addresses_groups_and_members(db, net) -> None:
    web = sg.add_group(db, "web")
    ssh = sg.add_group(db, "ssh")
    sg.add_rule(db, web, "icmp", (-1, -1), source_group=ssh)
    sg.add_rule(db, ssh, None, None, cidr="10.1.0.0/16")
    vm1 = make_instance(db, "vm1", net, 1, host="h1")
    vm2 = make_instance(db, "vm2", net, 2, host="h2")
    sg.associate(db, web, vm1.instance.uuid)
    sg.associate(db, ssh, vm2.instance.uuid)
    generation, state = api.host_firewall(db, "h1")
    assert generation == api.firewall_generation(db)
    (inst,) = state.instances
    assert inst.uuid == vm1.instance.uuid
    assert inst.security_groups == (web,)
    (nic,) = inst.nics
    assert nic.addresses == (vm1.address,)
    assert nic.mac == vm1.vif.address
    assert nic.network_cidr == netaddr.IPNetwork("10.0.0.0/24")
    assert nic.dhcp_server is not None
    assert state.members_of(ssh) == {vm2.address}
    assert api.host_instances(db, "h1") == [vm1.instance.uuid]


def test_a_restart_cuts_live_flows_the_database_no_longer_admits(
    db, net
) -> None:
    """No previous state after a start: the live conntrack entries to
    our instances are judged against the database's rules; the flow a
    rule deleted while the service was down is cut, the others stay."""
    web = sg.add_group(db, "web")
    rule = sg.add_rule(db, web, "tcp", (443, 443), cidr="10.9.0.0/16")
    sg.add_rule(db, web, "tcp", (22, 22), cidr="0.0.0.0/0")
    vm = make_instance(db, "vm1", net, 1, host="h1")
    sg.associate(db, web, vm.instance.uuid)
    sg.delete_rule(db, rule)  # while no service runs
    me, outside = int(vm.address), int(netaddr.IPAddress("10.9.0.7"))
    entries = [
        Entry("tcp", outside, me, me, outside, 40000, 443),  # cut
        Entry("tcp", outside, me, me, outside, 40001, 22),  # admitted
        Entry("tcp", me, outside, outside, me, 40002, 443),  # its own
        Entry("udp", outside, outside + 1, outside + 1, outside, 1, 53),
    ]
    site = Site(db, None)
    site.flows.live = entries
    site.daemon.run_once()
    assert site.flows.cut == [entries[0]]
    assert site.flows.deleted == []
    site.flows.live, site.flows.cut = [], []
    site.daemon.run_once()  # a later sync: no listing, nothing cut
    assert site.flows.cut == []


def test_the_reconciler_reads_only_the_change_after_the_first_sync(
    db, net
) -> None:
    web = sg.add_group(db, "web")
    sg.add_rule(db, web, "tcp", (22, 22), source_group=web)
    vm1 = make_instance(db, "vm1", net, 1, host="h1")
    sg.associate(db, web, vm1.instance.uuid)
    site = Site(db, None)
    reader = site.rec.reader
    assert isinstance(reader, api.HostFirewallReader)
    site.daemon.run_once()
    vm2 = make_instance(db, "vm2", net, 2, host="h2")  # remote member
    sg.associate(db, web, vm2.instance.uuid)
    site.daemon.run_once()
    assert reader.full_reads == 1  # the start; the rest were deltas
    assert reader.delta_reads > 0
    name = f"nova-compute-sg-{web}"
    assert site.ipsets.sets[name].members == {
        str(i.address) for i in (vm1, vm2)
    }
    assert site.rec.last == api.host_firewall(db, "h1")[1]


def test_after_a_failed_apply_the_next_sync_reads_in_full(db, net) -> None:
    vm1 = make_instance(db, "vm1", net, 1, host="h1")
    site = Site(db, None)
    reader = site.rec.reader
    assert isinstance(reader, api.HostFirewallReader)
    site.daemon.run_once()
    real = site.iptables.apply

    def broken(*args: object, **kwargs: object) -> bool:
        raise exception.FirewallApplyError(table="filter", reason="test")

    site.iptables.apply = broken  # type: ignore[method-assign]
    make_instance(db, "vm2", net, 2, host="h1")
    site.daemon.run_once()
    assert site.state(api.instance_key(vm1.instance.uuid)) is not None
    full = reader.full_reads
    site.iptables.apply = real  # type: ignore[method-assign]
    site.clock.now += 3600  # past the daemon's back-off
    site.daemon.run_once()
    assert reader.full_reads == full + 1
    assert site.rec.last == api.host_firewall(db, "h1")[1]
