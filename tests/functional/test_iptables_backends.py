"""One contract suite for every IptablesBackend: iptables-restore on
nf_tables, iptables-restore on legacy, python-iptables (legacy), and the
FakeIptables used by service tests. Real backends run in a fresh netns.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable

import netaddr
import pytest

from flatnet import exception
from flatnet.linux import iptables as linux_iptables
from flatnet.linux import iptables_iptc
from flatnet.linux.iptables_iptc import IptcBackend
from flatnet.linux.iptables_restore import RestoreBackend, variant
from flatnet.model import FloatingIp
from flatnet.plan import host_rules as hr
from flatnet.plan import iptables as ipt
from flatnet.service import host_rules as service
from tests.builders import flat_network
from tests.fakes_iptables import FakeIptables
from tests.functional import netns
from tests.unit.test_plan_iptables_compute import compute_ruleset

SETTINGS = hr.HostRulesSettings(
    public_interface="eth1",
    routing_source_ip="172.31.60.1",
    metadata_host="172.31.60.1",
    dmz_cidr=("10.203.3.0/24",),
)
NET = flat_network("10.203.0.0/24")


def fip(address: str, fixed: str | None) -> FloatingIp:
    return FloatingIp(
        id=1,
        address=netaddr.IPAddress(address),
        pool="nova",
        interface="eth1",
        fixed_address=None if fixed is None else netaddr.IPAddress(fixed),
    )


def ruleset(*floating: FloatingIp) -> ipt.RuleSet:
    return hr.host_ruleset([NET], floating, SETTINGS)


@dataclasses.dataclass
class Subject:
    """A backend plus raw CLI access to the same tables."""

    backend: linux_iptables.IptablesBackend
    command: Callable[[str, str], None]
    save: Callable[[], dict[str, ipt.SavedTable]]
    kind: str = "fake"
    netns: str | None = None


def _real(kind: str, ns: str) -> Subject:
    cli = "iptables" if kind == "restore-nft" else "iptables-legacy"
    backend: linux_iptables.IptablesBackend
    if kind == "iptc":
        backend = IptcBackend(netns=ns)
    else:
        backend = RestoreBackend(cli, netns=ns)

    def command(table: str, line: str) -> None:
        netns.run([cli, "-w", "-t", table, *line.split()], netns=ns)

    def save() -> dict[str, ipt.SavedTable]:
        return ipt.parse_save(netns.run([f"{cli}-save"], netns=ns).stdout)

    return Subject(backend, command, save, kind, ns)


@pytest.fixture(
    params=[
        pytest.param("restore-nft", marks=pytest.mark.root),
        pytest.param("restore-legacy", marks=pytest.mark.root),
        pytest.param("iptc", marks=pytest.mark.root),
        "fake",
    ]
)
def subject(request, make_netns) -> Subject:
    if request.param == "fake":
        fake = FakeIptables()
        return Subject(fake, fake.command, fake.read)
    return _real(request.param, make_netns("ipt"))


def chain(subject: Subject, table: str, name: str) -> list[str]:
    return list(subject.save()[table].chains.get(name, ()))


def test_apply_then_live_equals_desired_and_reapply_is_noop(subject):
    rs = ruleset(fip("172.31.60.100", "10.203.0.3"))
    assert [p.table for p in subject.backend.apply(rs)] == [
        "filter",
        "nat",
        "mangle",
    ]
    assert service.verify(subject.backend, rs) == []
    assert ipt.diff_ruleset(rs, subject.save()) == []
    assert subject.backend.apply(rs) == []


def test_result_looks_like_nova_network(subject):
    subject.backend.apply(ruleset())
    assert chain(subject, "filter", "FORWARD") == [
        "-j nova-filter-top",
        "-j nova-network-FORWARD",
    ]
    assert chain(subject, "filter", "OUTPUT") == [
        "-j nova-filter-top",
        "-j nova-network-OUTPUT",
    ]
    assert chain(subject, "filter", "nova-filter-top") == [
        "-j nova-network-local"
    ]
    assert chain(subject, "nat", "POSTROUTING")[-1] == (
        "-j nova-postrouting-bottom"
    )
    assert chain(subject, "nat", "nova-postrouting-bottom") == [
        "-j nova-network-snat"
    ]
    assert chain(subject, "nat", "nova-network-snat") == [
        "-j nova-network-float-snat",
        "-s 10.203.0.0/24 -o eth1 -j SNAT --to-source 172.31.60.1",
    ]


def test_foreign_rules_survive_in_position(subject):
    foreign = {
        ("filter", "INPUT"): "-s 10.203.9.{}/32 -j ACCEPT",
        ("filter", "FORWARD"): "-s 10.203.9.{}/32 -j DROP",
        ("nat", "POSTROUTING"): "-s 10.203.9.{}/32 -j MASQUERADE",
    }
    for (table, name), rule in foreign.items():
        subject.command(table, f"-A {name} {rule.format(1)}")
    subject.backend.apply(ruleset())
    for (table, name), rule in foreign.items():
        subject.command(table, f"-I {name} 1 {rule.format(0)}")
        subject.command(table, f"-A {name} {rule.format(2)}")
    # a foreign rule naming our prefix in a comment is still foreign
    subject.command(
        "filter",
        "-A INPUT -s 10.203.9.9/32 -m comment "
        "--comment nova-network-x -j ACCEPT",
    )
    before = subject.save()
    subject.backend.apply(ruleset(fip("172.31.60.100", "10.203.0.3")))
    subject.backend.apply(ruleset())
    after = subject.save()
    for (table, name), _ in foreign.items():
        assert after[table].chains[name] == before[table].chains[name]
    assert after["filter"].chains["INPUT"][:3] == (
        "-s 10.203.9.0/32 -j ACCEPT",
        "-j nova-network-INPUT",
        "-s 10.203.9.1/32 -j ACCEPT",
    )
    assert after["filter"].chains["INPUT"][-1].startswith("-s 10.203.9.9/32")


def test_flushed_chain_and_deleted_jump_are_detected_and_repaired(subject):
    rs = ruleset()
    subject.backend.apply(rs)
    subject.command("filter", "-F nova-network-INPUT")
    subject.command("nat", "-D POSTROUTING -j nova-postrouting-bottom")
    diff = service.verify(subject.backend, rs)
    assert (
        "+-A nova-network-INPUT -i br100 -p udp -m udp --dport 67 "
        "-j ACCEPT" in diff
    )
    assert "+[nat] -A POSTROUTING -j nova-postrouting-bottom" in diff
    assert service.repair(subject.backend, rs) == diff
    assert service.verify(subject.backend, rs) == []


def test_floating_rules_removed_when_disassociated(subject):
    subject.backend.apply(ruleset(fip("172.31.60.100", "10.203.0.3")))
    subject.backend.apply(ruleset())
    everything = [
        r
        for t in subject.save().values()
        for rules in t.chains.values()
        for r in rules
    ]
    assert not [r for r in everything if "172.31.60.100" in r]


def test_stale_chain_of_ours_is_removed(subject):
    subject.backend.apply(ruleset())
    subject.command("filter", "-N nova-network-old")
    subject.command("filter", "-A nova-network-old -j ACCEPT")
    subject.command("filter", "-A INPUT -j nova-network-old")
    assert subject.backend.apply(ruleset()) == []  # trusts its cache
    subject.backend.apply(ruleset(), verify=True)
    assert "nova-network-old" not in subject.save()["filter"].chains
    assert chain(subject, "filter", "INPUT") == ["-j nova-network-INPUT"]


def test_failure_is_atomic_and_names_the_rule(subject):
    subject.backend.apply(ruleset())
    before = subject.save()
    builder = ipt.RuleSetBuilder("nova-network")
    builder.add("filter", "INPUT", "-s 10.203.0.7/32 -j ACCEPT")
    builder.add("filter", "INPUT", "-j NOSUCHTARGET")
    with pytest.raises(exception.FirewallApplyError) as err:
        subject.backend.apply(builder.build())
    assert "NOSUCHTARGET" in str(err.value)
    assert err.value.kwargs["table"] == "filter"
    assert subject.save() == before


@pytest.mark.root
def test_auto_selection_follows_the_hosts_iptables():
    backend = linux_iptables.select_backend("auto")
    if variant("iptables") == "legacy":
        assert isinstance(backend, IptcBackend)
    else:
        assert isinstance(backend, RestoreBackend)
    assert isinstance(linux_iptables.select_backend("iptc"), IptcBackend)
    with pytest.raises(exception.ConfigError):
        linux_iptables.select_backend("nft")


def _ours(tables: dict[str, ipt.SavedTable]) -> dict[str, dict]:
    """Our three tables, chains sorted by name, as plain data."""
    return {
        name: dict(sorted(tables[name].chains.items()))
        for name in ("filter", "nat", "mangle")
    }


@pytest.mark.root
def test_all_backends_give_identical_iptables_save(make_netns):
    rs = ruleset(
        fip("172.31.60.100", "10.203.0.3"), fip("172.31.60.101", "10.203.0.4")
    )
    saved = {}
    for kind in ("restore-legacy", "iptc", "restore-nft"):
        subj = _real(kind, make_netns("ipt"))
        subj.backend.apply(rs)
        saved[kind] = _ours(subj.save())
    assert saved["iptc"] == saved["restore-legacy"]
    assert saved["restore-nft"] == saved["restore-legacy"]


# --- the applied-state cache ------------------------------------------------
@dataclasses.dataclass
class Spy:
    """What a backend did: ``reads`` (live-table reads: iptables-save or
    a libiptc handle) and ``commits`` (restore payloads, one per table).
    For restore backends every subprocess counts, whatever it runs."""

    reads: int = 0
    commits: list[list[str]] = dataclasses.field(default_factory=list)
    #: every subprocess, libiptc handle or fake call
    calls: int = 0

    def record_run(self, argv, **kwargs) -> None:
        self.calls += 1
        if any(a.endswith("-restore") for a in argv):
            self.commits.append(kwargs["input"].splitlines())
        else:
            self.reads += 1


def spy_on(subject: Subject, monkeypatch) -> Spy:
    """Watch the one seam each backend's work passes through (wrapping
    the real calls, which still run)."""
    spy = Spy()
    if subject.kind.startswith("restore"):
        real_run = subprocess.run

        def run(argv, *args, **kwargs):
            spy.record_run(argv, **kwargs)
            return real_run(argv, *args, **kwargs)

        monkeypatch.setattr(subprocess, "run", run)
    elif subject.kind == "iptc":
        real_open, real_execute = iptables_iptc._open, iptables_iptc._execute
        real_read = iptables_iptc._read_table

        def open_(name):
            spy.calls += 1
            return real_open(name)

        def read(table):
            spy.reads += 1
            return real_read(table)

        def execute(table, plan):
            spy.commits.append(plan.restore_lines())
            return real_execute(table, plan)

        monkeypatch.setattr(iptables_iptc, "_open", open_)
        monkeypatch.setattr(iptables_iptc, "_read_table", read)
        monkeypatch.setattr(iptables_iptc, "_execute", execute)
    else:
        fake = subject.backend
        real_read, real_commit = fake.read_table, fake.commit

        def read_table(name):
            spy.reads += 1
            spy.calls += 1
            return real_read(name)

        def commit(plan):
            spy.calls += 1
            spy.commits.append(plan.restore_lines())
            return real_commit(plan)

        monkeypatch.setattr(fake, "read_table", read_table)
        monkeypatch.setattr(fake, "commit", commit)
    return spy


def test_noop_apply_touches_nothing(subject, monkeypatch):
    rs = ruleset(fip("172.31.60.100", "10.203.0.3"))
    subject.backend.apply(rs)
    spy = spy_on(subject, monkeypatch)
    same = ruleset(fip("172.31.60.100", "10.203.0.3"))  # equal, not `is`
    assert subject.backend.apply(same) == []
    assert subject.backend.apply(rs) == []
    assert (spy.calls, spy.reads, spy.commits) == (0, 0, [])


def test_one_more_floating_ip_sends_only_its_rules(subject, monkeypatch):
    one = fip("172.31.60.100", "10.203.0.3")
    subject.backend.apply(ruleset(one))
    spy = spy_on(subject, monkeypatch)
    plans = subject.backend.apply(
        ruleset(one, fip("172.31.60.101", "10.203.0.4"))
    )
    assert [p.table for p in plans] == ["nat"]
    assert spy.reads == 0
    (payload,) = spy.commits
    assert payload[0] == "*nat"
    assert payload[-1] == "COMMIT"
    body = payload[1:-1]
    assert len(body) == 5
    assert all(line.startswith("-A nova-network-") for line in body)
    assert all("10.203.0.4" in line for line in body)
    assert service.verify(subject.backend, ruleset(one, fip(
        "172.31.60.101", "10.203.0.4"
    ))) == []  # fmt: skip


def test_stale_cache_falls_back_to_one_full_plan(subject, monkeypatch):
    subject.backend.apply(ruleset(fip("172.31.60.100", "10.203.0.3")))
    subject.command("nat", "-F nova-network-PREROUTING")  # drift
    spy = spy_on(subject, monkeypatch)
    # the delta's "-D nova-network-PREROUTING -d 172.31.60.100/32 ..."
    # fails on the flushed chain: re-read nat once, plan in full
    assert [p.table for p in subject.backend.apply(ruleset())] == ["nat"]
    assert spy.reads == 1
    assert len(spy.commits) == 2
    assert service.verify(subject.backend, ruleset()) == []


def test_drift_is_repaired_by_a_verifying_apply(subject, monkeypatch):
    rs = ruleset()
    subject.backend.apply(rs)
    subject.command("filter", "-F nova-network-INPUT")
    assert subject.backend.apply(rs) == []  # trusts the cache: no read
    assert service.verify(subject.backend, rs) != []
    spy = spy_on(subject, monkeypatch)
    plans = subject.backend.apply(rs, verify=True)
    assert [p.table for p in plans] == ["filter"]
    assert spy.reads == 3  # one read per table
    assert service.verify(subject.backend, rs) == []
    subject.command("filter", "-F nova-network-INPUT")
    subject.backend.refresh()
    assert [p.table for p in subject.backend.apply(rs)] == ["filter"]


def test_failed_delta_names_the_rule_and_forgets_the_table(subject):
    subject.backend.apply(ruleset())
    before = subject.save()
    builder = ipt.RuleSetBuilder("nova-network")
    builder.add("nat", "PREROUTING", "-d 172.31.60.9/32 -j NOSUCHCHAIN")
    with pytest.raises(exception.FirewallApplyError, match="NOSUCHCHAIN"):
        subject.backend.apply(builder.build())
    assert subject.save()["nat"] == before["nat"]
    # filter and mangle were committed (one commit per table); nat is
    # unknown now, so the next apply reads it and puts ours back
    subject.backend.apply(ruleset())
    assert service.verify(subject.backend, ruleset()) == []


# --- room for the compute side (a compute-style skeleton, not issue 9) ------
def test_compute_style_ruleset_with_set_matches(subject, monkeypatch):
    if subject.netns is not None:
        netns.run(["ipset", "create", "fnt-sg-web", "hash:net"],
                  netns=subject.netns)  # fmt: skip
    rs = compute_ruleset(50)
    assert [p.table for p in subject.backend.apply(rs)] == [
        "filter", "nat", "mangle",
    ]  # fmt: skip
    # the live spelling (nft, legacy, libiptc) is the canonical one
    assert service.verify(subject.backend, rs) == []
    assert chain(subject, "filter", "nova-compute-inst-7")[-3:] == [
        "-p icmp -m icmp --icmp-type 8/0 -j ACCEPT",
        "-p tcp -m set --match-set fnt-sg-web src -m tcp --dport 22 -j ACCEPT",
        "-j nova-compute-sg-fallback",
    ]
    spy = spy_on(subject, monkeypatch)
    touched = compute_ruleset(50, extra="-j ACCEPT -p udp --dport 53")
    assert [p.table for p in subject.backend.apply(touched)] == ["filter"]
    assert (spy.reads, len(spy.commits)) == (0, 1)  # one commit, no read
    assert service.verify(subject.backend, touched) == []
    subject.backend.apply(compute_ruleset(0))
    assert not [c for c in subject.save()["filter"].chains if "-inst-" in c]
    assert chain(subject, "filter", "nova-compute-local") == []
