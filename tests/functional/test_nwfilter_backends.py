"""One contract suite for NWFilterBackend: the real libvirtd (through
LibvirtNWFilter) and FakeNWFilter. Both go through NWFilterSync, the
code a host's reconciler will run.

Filters on the real libvirtd carry a per-run prefix (``fnt<pid>x-``) so
tests never touch nova's real names, and are all undefined afterwards.
A "guest using a filter" is a paused transient domain whose interface
refers to it (libvirt instantiates the filter on the tap).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator

import netaddr
import pytest

from flatnet import exception
from flatnet.linux import nwfilter as linux
from flatnet.plan import nwfilter as plan
from tests.fakes_nwfilter import FakeNWFilter
from tests.functional import vm

PREFIX = f"fnt{os.getpid()}x-"


def nic(name: str, ip: str, mac: str = "fa:16:3e:00:00:01"):
    return plan.NicFilterSpec(
        name,
        netaddr.EUI(mac),
        (netaddr.IPAddress(ip),),
        netaddr.IPAddress("10.77.0.1"),
        netaddr.IPNetwork("10.77.0.0/24"),
    )


@dataclasses.dataclass
class Subject:
    backend: linux.NWFilterBackend
    #: attach(name) -> detach(): a running guest uses filter ``name``
    attach: Callable[[str], Callable[[], None]]
    kind: str = "fake"

    def sync(self) -> linux.NWFilterSync:
        return linux.NWFilterSync(prune_prefix=PREFIX + plan.INSTANCE_PREFIX)


def _fake() -> Subject:
    fake = FakeNWFilter()

    def attach(name: str) -> Callable[[], None]:
        fake.attach(name)
        return lambda: fake.detach(name)

    return Subject(fake, attach)


@contextlib.contextmanager
def _real() -> Iterator[Subject]:
    try:
        conn = vm.connection()
    except vm.VmUnavailable as exc:
        pytest.skip(str(exc))
    backend = linux.LibvirtNWFilter()
    bridge = vm.TestBridge().create()
    guests: list[vm.Guest] = []

    def attach(name: str) -> Callable[[], None]:
        ref = plan.filterref_element(name)
        guest = vm.Guest(conn, vm.Nic(bridge.name, "fa:16:3e:00:00:01", ref),
                         paused=True)  # fmt: skip
        guests.append(guest)
        return guest.destroy

    try:
        yield Subject(backend, attach, "libvirt")
    finally:
        for guest in guests:
            guest.destroy()
        bridge.close()
        _undefine_ours(backend)
        backend.close()


def _undefine_ours(backend: linux.LibvirtNWFilter) -> None:
    # instance filters first: nothing may refer to what goes first
    for name in sorted(backend.names(), key=lambda n: "instance" not in n):
        if name.startswith(PREFIX):
            backend.undefine(name)


@pytest.fixture(
    params=[pytest.param("libvirt", marks=pytest.mark.root), "fake"]
)
def subject(request) -> Iterator[Subject]:
    if request.param == "fake":
        yield _fake()
        return
    with _real() as real:
        yield real


def desired(*specs: plan.NicFilterSpec) -> tuple[plan.NWFilter, ...]:
    return plan.host_filters(specs, prefix=PREFIX)


def test_apply_defines_everything_and_again_nothing(subject):
    want = desired(
        nic("vm1", "10.77.0.5"), nic("vm2", "10.77.0.6", "fa:16:3e:00:00:02")
    )
    result = subject.sync().apply(subject.backend, want)
    assert result.defined == [f.name for f in want]
    for flt in want:
        live = subject.backend.lookup(flt.name)
        assert live is not None
        assert plan.same(plan.parse(live.xml)[0], flt), live.xml
    # a second apply, and one from a fresh process (cold cache), are no-ops
    assert subject.sync().apply(subject.backend, want).defined == []


def test_changed_instance_is_redefined_with_the_same_uuid(subject):
    sync = subject.sync()
    sync.apply(subject.backend, desired(nic("vm1", "10.77.0.5")))
    name = plan.instance_filter_name(
        "vm1", netaddr.EUI("fa:16:3e:00:00:01"), PREFIX
    )
    before = subject.backend.lookup(name)
    result = sync.apply(subject.backend, desired(nic("vm1", "10.77.0.9")))
    assert result.defined == [name]
    after = subject.backend.lookup(name)
    assert after.uuid == before.uuid
    assert ("IP", "10.77.0.9") in plan.parse(after.xml)[0].entries[
        0
    ].parameters


def test_a_new_uuid_for_an_existing_name_is_refused(subject):
    """libvirt >= 1.2.7 (nova LP#1360119): why the executor keeps UUIDs."""
    flt = desired(nic("vm1", "10.77.0.5"))[-1]
    uuid = subject.backend.define(flt.xml())
    other = "0f0e0d0c-0b0a-0908-0706-050403020100"
    with pytest.raises(exception.NWFilterError) as err:
        subject.backend.define(flt.xml(other))
    assert linux.error_code(err.value) == linux.VIR_ERR_OPERATION_FAILED
    assert f"already exists with uuid {uuid}" in str(err.value)
    assert subject.backend.lookup(flt.name).uuid == uuid


def test_removed_instance_is_undefined_static_filters_stay(subject):
    sync = subject.sync()
    sync.apply(subject.backend, desired(nic("vm1", "10.77.0.5")))
    result = sync.apply(subject.backend, desired())
    assert [n for n in result.removed] == [
        plan.instance_filter_name(
            "vm1", netaddr.EUI("fa:16:3e:00:00:01"), PREFIX
        )
    ]
    assert {f.name for f in desired()} <= subject.backend.names()


def test_filter_in_use_is_busy_until_the_guest_is_gone(subject):
    sync = subject.sync()
    want = desired(nic("vm1", "10.77.0.5"))
    sync.apply(subject.backend, want)
    detach = subject.attach(want[-1].name)
    with pytest.raises(exception.NWFilterError) as err:
        subject.backend.undefine(PREFIX + plan.BASE)  # used through the ref
    assert linux.in_use(err.value), err.value
    result = sync.apply(subject.backend, desired())
    assert result.busy == [want[-1].name]
    assert want[-1].name in subject.backend.names()
    detach()
    result = sync.apply(subject.backend, desired())
    assert result.removed == [want[-1].name]


def test_missing_reference_fails_closed_before_defining(subject):
    good = desired(nic("vm1", "10.77.0.5"))
    orphan = plan.NWFilter(
        PREFIX + "nova-instance-x-fa163e000009", "root",
        (plan.FilterRef(PREFIX + "nova-missing"),),
    )  # fmt: skip
    with pytest.raises(exception.NWFilterError, match="undefined"):
        subject.sync().apply(subject.backend, (*good, orphan))
    assert not {f.name for f in good} & subject.backend.names()


def test_an_instance_filter_libvirt_refuses_is_reported_others_apply(subject):
    bad = plan.NWFilter(
        PREFIX + "nova-instance-bad-fa163e000009", "nonsense-chain"
    )
    good = desired(nic("vm1", "10.77.0.5"))
    result = subject.sync().apply(subject.backend, (*good, bad))
    assert list(result.failed) == [bad.name]
    assert linux.error_code(result.failed[bad.name]) is not None
    assert "chain" in str(result.failed[bad.name])
    assert {f.name for f in good} <= subject.backend.names()
    assert bad.name not in subject.backend.names()


def test_a_static_filter_libvirt_refuses_raises(subject):
    bad = plan.NWFilter(PREFIX + "nova-base", "nonsense-chain")
    with pytest.raises(exception.NWFilterError, match="chain"):
        subject.sync().apply(subject.backend, (bad,))


def test_undefine_of_a_missing_filter_is_false(subject):
    assert subject.backend.undefine(PREFIX + "never-defined") is False
    assert subject.backend.lookup(PREFIX + "never-defined") is None
