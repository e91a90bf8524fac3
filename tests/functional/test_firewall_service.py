"""The compute role end to end: the real flatnet-network (flatnet_roles
= compute) in the host namespace of fw_site, the database written by
the test (security-group rows as the "sg" stream's CLI will write them),
the firewall-driver API waiting for the service, and real TCP through
the bridge (br_netfilter on in the test's namespace)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from flatnet.db import api
from flatnet.service.firewall_driver import FirewallDriver, wait_instances
from tests import secgroup_rows as sg
from tests.db.conftest import make_instance, make_network
from tests.functional import netns
from tests.functional.dhcp_site import BIN
from tests.functional.fw_site import OUTSIDE, Site, send

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def site(make_netns):
    made = Site(make_netns)
    yield made
    made.close()


def _chains(ns: str) -> str:
    return netns.run(["iptables-save", "-t", "filter"], netns=ns).stdout


def _set(ns: str, name: str) -> str:
    found = netns.run(["ipset", "list", name], netns=ns, check=False)
    return found.stdout if found.returncode == 0 else ""


def _until(check, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, check
        time.sleep(0.02)
    return time.monotonic() - start


def _manage(site, conf, *argv: str) -> subprocess.CompletedProcess[str]:
    return netns.run(
        [str(BIN / "flatnet-manage"), argv[0], "--config-file", str(conf),
         *argv[1:]],
        netns=site.host, check=False, timeout=60,
    )  # fmt: skip


def _verify_and_repair(site, conf, instance_id: int, group: int) -> None:
    """flatnet-manage verify/repair cover the compute chains and sets."""
    out = _manage(site, conf, "verify")
    assert out.returncode == 0, out.stdout + out.stderr
    chain = f"nova-compute-inst-{instance_id}"
    netns.run(["iptables", "-F", chain], netns=site.host)
    netns.run(["ipset", "flush", f"nova-compute-sg-{group}"], netns=site.host)
    out = _manage(site, conf, "verify")
    assert out.returncode == 3, out.stdout + out.stderr
    assert f"firewall: +-A {chain} -m state --state INVALID -j DROP" in (
        out.stdout
    )
    assert f"nova-compute-sg-{group}" in out.stdout
    out = _manage(site, conf, "repair")
    assert out.returncode == 0, out.stderr
    assert "firewall: repaired" in out.stdout
    assert _manage(site, conf, "verify").returncode == 0


def test_compute_role_applies_rules_members_and_deletes(site, tmp_path):
    db = api.Database(f"sqlite:///{tmp_path}/f.sqlite", create=True)
    api.sync(db)
    net = make_network(db, "10.77.0.0/24")
    web = sg.add_group(db, "web")
    sg.add_rule(db, web, "tcp", (80, 80), cidr="0.0.0.0/0")
    sg.add_rule(db, web, "tcp", (8080, 8080), source_group=web)
    vms = {}
    for n in (10, 11):
        site.add_vm(n)
        vms[n] = make_instance(db, f"vm{n}", net, n, f"10.77.0.{n}", "h1")
        sg.associate(db, web, vms[n].instance.uuid)
    site.serve(10, 80, 22, 8080)
    conf = tmp_path / "flatnet.conf"
    conf.write_text(
        "[DEFAULT]\nhost = h1\nflatnet_roles = compute\n"
        f"state_path = {tmp_path}\nallow_same_net_traffic = false\n"
        "sync_interval = 0.05\niptables_backend = restore\n"
        f"[database]\nconnection = sqlite:///{tmp_path}/f.sqlite\n"
    )
    log = (tmp_path / "daemon.log").open("w")
    daemon = netns.popen(
        [str(BIN / "flatnet-network"), "--config-file", str(conf)],
        netns=site.host, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        driver = FirewallDriver(db, "h1", interval=0.02, timeout=20)
        vm10 = vms[10].instance
        driver.prepare_instance_filter(vm10)
        outside, vm11 = site.outside, site.vms[11]
        assert site.can_connect(outside, 10, 80)
        assert not site.can_connect(outside, 10, 22)
        assert site.can_connect(vm11, 10, 8080)  # a member of web
        assert not site.can_connect(outside, 10, 8080)
        assert not site.can_connect(vm11, 10, 22)
        # a rule added later reaches the running instance
        added = time.monotonic()
        sg.add_rule(db, web, "tcp", (22, 22), cidr=f"{OUTSIDE}/32")
        driver.refresh_instance_security_rules(vm10)
        live = time.monotonic() - added
        assert site.can_connect(outside, 10, 22)
        print(f"rule added -> live on the host: {live * 1000:.0f} ms")
        # instance delete: its chain and its set entry go
        chain = f"nova-compute-inst-{vm10.id}"
        assert chain in _chains(site.host)
        assert "10.77.0.10" in _set(site.host, f"nova-compute-sg-{web}")
        api.deallocate_for_instance(db, vm10.uuid)
        driver.refresh_security_group_rules(web)
        assert chain not in _chains(site.host)
        members = _set(site.host, f"nova-compute-sg-{web}")
        assert "10.77.0.11" in members
        assert "10.77.0.10" not in members
        assert "nova-compute-inst-" in _chains(site.host)  # vm11 stays
        _verify_and_repair(site, conf, vms[11].instance.id, web)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=10)
        log.close()
        db.dispose()


def test_reconciler_defines_and_removes_real_nwfilters(site, tmp_path):
    """The firewall reconciler with the real executors in the test's
    namespace and the real libvirtd (filters under a per-run prefix):
    nova-base and each NIC's instance filter are defined with the rules,
    and an instance's filter goes with the instance."""
    from flatnet.linux.conntrack import Conntrack  # noqa: PLC0415
    from flatnet.linux.ipset import IpsetBackend  # noqa: PLC0415
    from flatnet.linux.iptables_restore import RestoreBackend  # noqa: PLC0415
    from flatnet.linux.nwfilter import LibvirtNWFilter  # noqa: PLC0415
    from flatnet.plan import nwfilter as nwplan  # noqa: PLC0415
    from flatnet.plan.firewall import FirewallSettings  # noqa: PLC0415
    from flatnet.service.daemon import Daemon  # noqa: PLC0415
    from flatnet.service.firewall import (  # noqa: PLC0415
        FirewallReconciler,
        NWFilters,
    )
    from tests.functional import vm  # noqa: PLC0415

    try:
        vm.connection()
    except vm.VmUnavailable as exc:
        pytest.skip(str(exc))
    prefix = f"fnt{os.getpid()}c-"
    db = api.Database(f"sqlite:///{tmp_path}/f.sqlite", create=True)
    api.sync(db)
    net = make_network(db, "10.77.0.0/24")
    infos = [make_instance(db, f"vm{n}", net, n, f"10.77.0.{n}", "h1")
             for n in (10, 11)]  # fmt: skip
    libvirt = LibvirtNWFilter()
    settings = FirewallSettings()
    rec = FirewallReconciler(
        db, "h1", settings,
        ipsets=IpsetBackend(settings.prefix, netns=site.host),
        iptables=RestoreBackend("iptables", netns=site.host),
        conntrack=Conntrack(netns=site.host),
        nwfilters=NWFilters(lambda: libvirt, prefix),
    )  # fmt: skip
    daemon = Daemon(db, "h1", [rec])
    names = [
        nwplan.instance_filter_name(
            f"instance-{i.instance.id:08x}", i.vif.address, prefix
        )
        for i in infos
    ]
    try:
        daemon.run_once()
        live = libvirt.names()
        assert {f"{prefix}nova-base", f"{prefix}nova-nodhcp", *names} <= live
        xml = libvirt.lookup(names[0]).xml
        assert "<parameter name='IP' value='10.77.0.10'/>" in xml.replace(
            '"', "'"
        )
        key = api.instance_key(infos[0].instance.uuid)
        assert api.host_state(db, "h1", "firewall", key).last_error is None
        api.deallocate_for_instance(db, infos[0].instance.uuid)
        daemon.run_once()
        live = libvirt.names()
        assert names[0] not in live
        assert names[1] in live
    finally:
        for name in sorted(libvirt.names(), key=lambda n: "instance" not in n):
            if name.startswith(prefix):
                libvirt.undefine(name)
        libvirt.close()
        db.dispose()


def _start(site, conf, log) -> subprocess.Popen[str]:
    return netns.popen(
        [str(BIN / "flatnet-network"), "--config-file", str(conf)],
        netns=site.host, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _stop(daemon: subprocess.Popen[str]) -> None:
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=10)


@pytest.mark.parametrize("removed", [True, False], ids=["removed", "kept"])
def test_a_rule_removed_while_down_cuts_its_flow_at_start(
    site, tmp_path, removed
):
    """A TCP flow held open through a rule; the service stops; the rule
    is deleted in the database (or, as a control, another rule added);
    the service starts: once it reports the instance ready, the flow's
    next packet is dropped (the client waits 1 s for its echo), while
    the control's flow lives on."""
    db = api.Database(f"sqlite:///{tmp_path}/f.sqlite", create=True)
    api.sync(db)
    net = make_network(db, "10.77.0.0/24")
    web = sg.add_group(db, "web")
    grant = sg.add_rule(db, web, "tcp", (7000, 7000), cidr=f"{OUTSIDE}/32")
    site.add_vm(10)
    vm = make_instance(db, "vm10", net, 10, "10.77.0.10", "h1").instance
    sg.associate(db, web, vm.uuid)
    site.serve(10, 7000)
    conf = tmp_path / "flatnet.conf"
    conf.write_text(
        "[DEFAULT]\nhost = h1\nflatnet_roles = compute\n"
        f"state_path = {tmp_path}\nallow_same_net_traffic = false\n"
        "sync_interval = 0.05\niptables_backend = restore\n"
        f"[database]\nconnection = sqlite:///{tmp_path}/f.sqlite\n"
    )
    driver = FirewallDriver(db, "h1", interval=0.02, timeout=20)
    log = (tmp_path / "daemon.log").open("w")
    daemon = _start(site, conf, log)
    try:
        driver.prepare_instance_filter(vm)
        held = site.hold(site.outside, 10, 7000)
        assert send(held, "before") == "ok"
        _stop(daemon)
        if removed:
            sg.delete_rule(db, grant)
        else:
            sg.add_rule(db, web, "tcp", (22, 22), cidr="0.0.0.0/0")
        daemon = _start(site, conf, log)
        driver.refresh_instance_security_rules(vm)  # waits for ready
        assert send(held, "after") == ("timeout" if removed else "ok")
        assert site.can_connect(site.outside, 10, 7000) == (not removed)
    finally:
        _stop(daemon)
        log.close()
        db.dispose()


def _children(pid: int) -> str:
    """The command names of ``pid``'s child processes."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as found:
            kids = found.read().split()
    except OSError:
        return ""
    names = []
    for kid in kids:
        try:
            with open(f"/proc/{kid}/comm") as comm:
                names.append(comm.read().strip())
        except OSError:
            continue
    return " ".join(names)


def test_kill_9_during_the_iptables_commit_converges_after_restart(
    site, tmp_path
):
    """200 instances booted together; the service is killed with
    SIGKILL while its iptables-restore runs (or, if that was too quick
    to catch, right after); a rule is added while it is down; the
    restarted service reports every instance ready and `verify` finds
    the live chains and sets equal to the database."""
    db = api.Database(f"sqlite:///{tmp_path}/f.sqlite", create=True)
    api.sync(db)
    net = make_network(db, "10.77.0.0/24")
    web = sg.add_group(db, "web")
    sg.add_rule(db, web, "tcp", (80, 80), cidr="0.0.0.0/0")
    sg.add_rule(db, web, "tcp", (22, 22), source_group=web)
    uuids = []
    for n in range(200):
        info = make_instance(db, f"vm{n}", net, n + 1, host="h1")
        sg.associate(db, web, info.instance.uuid)
        uuids.append(info.instance.uuid)
    conf = tmp_path / "flatnet.conf"
    conf.write_text(
        "[DEFAULT]\nhost = h1\nflatnet_roles = compute\n"
        f"state_path = {tmp_path}\nsync_interval = 0.05\n"
        "iptables_backend = restore\n"
        f"[database]\nconnection = sqlite:///{tmp_path}/f.sqlite\n"
    )
    log = (tmp_path / "daemon.log").open("w")
    daemon = _start(site, conf, log)
    try:
        deadline = time.monotonic() + 20
        caught = False
        while not caught and time.monotonic() < deadline:
            assert daemon.poll() is None
            caught = "iptables-restor" in _children(daemon.pid)
            time.sleep(0.001)
        daemon.kill()
        print(f"SIGKILL during iptables-restore: {caught}")
        daemon.wait(timeout=10)
        sg.add_rule(db, web, "udp", (53, 53), cidr="10.0.0.0/8")
        daemon = _start(site, conf, log)
        wait_instances(db, "h1", uuids, timeout=60)
        out = _manage(site, conf, "verify")
        assert out.returncode == 0, out.stdout + out.stderr
        live = _chains(site.host)
        assert live.count(":nova-compute-inst-") == 200
        assert "--dport 53" in live
    finally:
        _stop(daemon)
        log.close()
        db.dispose()
