"""One contract suite for the ipset executor: the real ``ipset`` in a
fresh namespace (a set "held" by a real ``-m set`` iptables rule) and
the FakeIpset used above the executors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from flatnet import exception
from flatnet.linux.ipset import IpsetBackend
from flatnet.plan.ipset import IpsetPlan, IpSetSpec
from tests.fakes_ipset import FakeIpset
from tests.functional import netns

PREFIX = "fnt-fw"


@dataclasses.dataclass
class Subject:
    backend: IpsetBackend
    hold: Callable[[str], None]
    release: Callable[[str], None]
    raw: Callable[[str], None]  # one ipset command, behind our back


def _real(ns: str) -> Subject:
    def rule(op: str, name: str) -> None:
        argv = ["iptables", "-w", op, "INPUT", "-m", "set", "--match-set"]
        netns.run([*argv, name, "src", "-j", "ACCEPT"], netns=ns)

    return Subject(
        IpsetBackend(PREFIX, netns=ns),
        lambda name: rule("-A", name),
        lambda name: rule("-D", name),
        lambda line: netns.run(["ipset", *line.split()], netns=ns),
    )


def _fake() -> Subject:
    fake = FakeIpset(PREFIX)

    def raw(line: str) -> None:
        fake.restore(IpsetPlan((line,)))

    return Subject(fake, fake.hold, fake.release, raw)


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.root)])
def subject(request, make_netns) -> Subject:
    if request.param == "fake":
        return _fake()
    return _real(make_netns("ips"))


def spec(n: int, *members: str) -> IpSetSpec:
    return IpSetSpec(f"{PREFIX}-sg-{n}", frozenset(members))


def hosts(count: int, third: int = 0) -> list[str]:
    return [f"10.{third}.{n // 250}.{n % 250 + 1}" for n in range(count)]


def live_members(subject: Subject) -> dict[str, frozenset[str]]:
    return {n: s.members for n, s in subject.backend.read().items()}


def test_ensure_creates_then_does_nothing(subject):
    desired = [spec(1, "10.0.0.5", "10.1.0.0/16"), spec(2)]
    plan = subject.backend.ensure(desired)
    assert plan.created == (f"{PREFIX}-sg-1", f"{PREFIX}-sg-2")
    assert live_members(subject) == {s.name: s.members for s in desired}
    assert subject.backend.ensure(desired).empty
    subject.backend.refresh()
    assert subject.backend.ensure(desired).empty  # read back: equal


def test_small_changes_are_updates_big_ones_a_swap(subject):
    subject.backend.ensure([spec(1, *hosts(100))])
    subject.hold(f"{PREFIX}-sg-1")  # a live rule uses the set throughout
    plan = subject.backend.ensure([spec(1, *hosts(100)[1:], "10.9.9.9")])
    assert plan.updated == (f"{PREFIX}-sg-1",)
    assert plan.lines == (
        f"add {PREFIX}-sg-1 10.9.9.9",
        f"del {PREFIX}-sg-1 10.0.0.1",
    )
    plan = subject.backend.ensure([spec(1, *hosts(300, third=1))])
    assert plan.swapped == (f"{PREFIX}-sg-1",)
    assert live_members(subject) == {
        f"{PREFIX}-sg-1": frozenset(hosts(300, third=1))
    }


def test_prune_destroys_only_unwanted_sets_and_not_while_held(subject):
    subject.raw("create foreign-1 hash:ip")
    subject.backend.ensure([spec(1, "10.0.0.1"), spec(2, "10.0.0.2")])
    subject.hold(f"{PREFIX}-sg-2")
    with pytest.raises(exception.IpsetError) as err:
        subject.backend.prune([spec(1, "10.0.0.1")])
    assert err.value.kwargs["name"] == f"{PREFIX}-sg-2"
    assert "in use" in str(err.value)
    subject.release(f"{PREFIX}-sg-2")
    plan = subject.backend.prune([spec(1, "10.0.0.1")])
    assert plan.destroyed == (f"{PREFIX}-sg-2",)
    assert set(live_members(subject)) == {f"{PREFIX}-sg-1"}
    assert "create foreign-1 hash:ip" in subject.backend.save_text()


def test_a_leftover_temporary_set_is_cleared(subject):
    subject.raw(f"create {PREFIX}-sg-1-t hash:net family inet")
    subject.backend.ensure([spec(1, "10.0.0.1")])
    assert set(live_members(subject)) == {f"{PREFIX}-sg-1"}


def test_drift_is_repaired_by_verify_and_a_stale_cache_recovers(subject):
    subject.backend.ensure([spec(1, "10.0.0.1", "10.0.0.2")])
    subject.raw(f"del {PREFIX}-sg-1 10.0.0.2")
    assert subject.backend.ensure([spec(1, "10.0.0.1", "10.0.0.2")]).empty
    assert subject.backend.differences([spec(1, "10.0.0.1", "10.0.0.2")]) == [
        f"ipset {PREFIX}-sg-1: 1 missing, 0 extra"
    ]
    subject.backend.ensure([spec(1, "10.0.0.1", "10.0.0.2")], verify=True)
    assert live_members(subject)[f"{PREFIX}-sg-1"] == {"10.0.0.1", "10.0.0.2"}
    # someone destroyed our set: the cached delta fails, one re-read fixes
    subject.raw(f"destroy {PREFIX}-sg-1")
    subject.backend.ensure([spec(1, "10.0.0.1", "10.0.0.3")])
    assert live_members(subject) == {
        f"{PREFIX}-sg-1": {"10.0.0.1", "10.0.0.3"}
    }


def test_a_held_set_of_another_type_is_an_error_naming_it(subject):
    subject.raw(f"create {PREFIX}-sg-1 hash:ip")
    subject.hold(f"{PREFIX}-sg-1")
    with pytest.raises(exception.IpsetError) as err:
        subject.backend.ensure([spec(1, "10.0.0.1")])
    assert err.value.kwargs["name"] == f"{PREFIX}-sg-1"
    assert str(err.value).count("\n") == 0


def test_only_sets_of_the_prefix_are_accepted(subject):
    with pytest.raises(exception.IpsetError, match="not a fnt-fw-"):
        subject.backend.ensure([IpSetSpec("other-sg-1")])
    with pytest.raises(exception.InvalidInput):
        IpSetSpec(f"{PREFIX}-sg-1", frozenset({"10.0.0.1\nflush"}))


@pytest.mark.root
def test_missing_namespace_is_an_ipset_error():
    backend = IpsetBackend(PREFIX, netns=netns.unique_name("gone"))
    with pytest.raises(exception.IpsetError, match="fnt-fw-"):
        backend.ensure([spec(1)])
