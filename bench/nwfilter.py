"""Benchmark: libvirt nwfilter define time per instance, and VM boot.

Against the real libvirtd (qemu:///system), with filter names under a
throwaway prefix (all undefined at the end):

* ``plan``: host_filters() for N instances in Python;
* ``static``: the static set (nova's + flatnet's guards), first define;
* ``define N``: N instance filters in one NWFilterSync.apply (ms/inst);
* ``no-op``: the same set again (cache: no RPC);
* ``cold no-op``: a fresh NWFilterSync (restart): lists and reads every
  filter, defines nothing;
* ``change 1``: one instance's IP changed (one redefine, same UUID);
* ``undefine N``: every instance gone in one apply.

``--boot K`` also boots K guests (tools/build-guest.sh) one after the
other on a test bridge with flatnet's instance filter and a real
dnsmasq, and prints the seconds from createXML to the LEASE line, to
FNT-DONE, and to libvirt's teardown (domain and nwfilter binding gone).

    .venv/bin/python bench/nwfilter.py [N ...] [--boot K]
"""

from __future__ import annotations

import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

import netaddr

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flatnet.linux import nwfilter as linux  # noqa: E402
from flatnet.plan import nwfilter as plan  # noqa: E402

PREFIX = f"fntbench{os.getpid()}-"


def specs(n: int, last_octet_shift: int = 0) -> list[plan.NicFilterSpec]:
    net = netaddr.IPNetwork("10.128.0.0/16")
    return [
        plan.NicFilterSpec(
            f"instance-{i:08x}",
            netaddr.EUI(0xFA163E000000 + i),
            (net[10 + i + last_octet_shift],),
            net[1],
            net,
        )
        for i in range(n)
    ]


def timed(label: str, fn: Callable[[], object], per: int = 0) -> float:
    start = time.perf_counter()
    fn()
    took = time.perf_counter() - start
    extra = f"  ({took / per * 1000:.2f} ms per instance)" if per else ""
    print(f"  {label:<14} {took * 1000:9.1f} ms{extra}")
    return took


def bench_define(backend: linux.LibvirtNWFilter, n: int) -> None:
    print(f"N = {n} instance filters")
    want = specs(n)
    filters = plan.host_filters(want, PREFIX)
    timed("plan", lambda: plan.host_filters(want, PREFIX))
    sync = linux.NWFilterSync(PREFIX + plan.INSTANCE_PREFIX)
    static = plan.static_filters(PREFIX)
    timed("static", lambda: sync.apply(backend, static))
    timed(f"define {n}", lambda: sync.apply(backend, filters), per=n)
    timed("no-op", lambda: sync.apply(backend, filters))
    cold = linux.NWFilterSync(PREFIX + plan.INSTANCE_PREFIX)
    timed("cold no-op", lambda: cold.apply(backend, filters))
    changed = list(want)
    changed[0] = specs(1, last_octet_shift=5000)[0]
    new = plan.host_filters(changed, PREFIX)
    timed("change 1", lambda: sync.apply(backend, new))
    timed(f"undefine {n}", lambda: sync.apply(backend, static), per=n)
    for flt in reversed(static):
        backend.undefine(flt.name)


def bench_boot(count: int) -> None:
    from tests.functional import netns, vm  # noqa: PLC0415
    from tests.functional.vm_site import VmSite  # noqa: PLC0415

    conn = vm.connection()
    print(f"VM boots ({vm.virt_type()}, guest from tools/build-guest.sh)")
    backend = linux.LibvirtNWFilter()
    sync = linux.NWFilterSync(PREFIX + plan.INSTANCE_PREFIX)
    made: list[str] = []

    def make_netns(kind: str) -> str:
        name = netns.unique_name(kind)
        netns.create(name)
        made.append(name)
        return name

    site = VmSite(make_netns)
    leases: list[float] = []
    try:
        for i in range(count):
            leases.append(_boot_one(conn, site, backend, sync, i))
    finally:
        site.close()
        for name in made:
            netns.delete(name)
        sync.apply(backend, plan.static_filters(PREFIX))
        for flt in reversed(plan.static_filters(PREFIX)):
            backend.undefine(flt.name)
    print(
        f"  create -> LEASE: median {statistics.median(leases):.2f} s, "
        f"min {min(leases):.2f}, max {max(leases):.2f} (n={count})"
    )


def _boot_one(conn, site, backend, sync, i: int) -> float:  # noqa: ANN001
    from tests.functional import vm  # noqa: PLC0415

    mac = f"fa:16:3e:be:00:{i:02x}"
    ip = f"{site.prefix}.{20 + i}"
    site.add_host(mac, ip, f"bench{i}")
    spec = plan.NicFilterSpec(
        f"bench{i}", netaddr.EUI(mac), (netaddr.IPAddress(ip),),
        netaddr.IPAddress(site.gateway),
        netaddr.IPNetwork(f"{site.prefix}.0/24"),
    )  # fmt: skip
    sync.apply(backend, plan.host_filters([spec], PREFIX))
    ref = plan.filterref_element(plan.instance_filter_name(
        spec.instance_name, spec.mac, PREFIX))  # fmt: skip
    start = time.monotonic()
    guest = vm.Guest(conn, vm.Nic(site.bridge.name, mac, ref))
    created = time.monotonic() - start
    guest.wait_line("LEASE ", 180)
    lease = time.monotonic() - start
    guest.wait_line("FNT-DONE", 60)
    done = time.monotonic() - start
    guest.destroy()
    down = time.monotonic() - start
    print(
        f"  boot {i}: created {created:.2f} s, LEASE {lease:.2f} s, "
        f"done {done:.2f} s, torn down {down:.2f} s"
    )
    return lease


def main(argv: list[str]) -> None:
    boot = 0
    if "--boot" in argv:
        at = argv.index("--boot")
        boot = int(argv[at + 1])
        del argv[at : at + 2]
    sizes = [int(a) for a in argv if a.isdigit()] or [100, 1000]
    try:
        backend = linux.LibvirtNWFilter()
    except Exception as exc:  # noqa: BLE001 (report, do not fail make bench)
        print(f"nwfilter bench skipped: no libvirtd ({exc})")
        return
    for n in sizes:
        bench_define(backend, n)
    backend.close()
    if boot:
        bench_boot(boot)


if __name__ == "__main__":
    main(sys.argv[1:])
