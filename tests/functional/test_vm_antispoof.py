"""Real VMs prove flatnet's nwfilters on the wire.

A guest booted through libvirt with flatnet's instance filter
(``<filterref filter='...nova-instance-attacker-...'>``) gets its lease
from a real dnsmasq and reaches the site (ping, HTTP over TCP), while
what it sends with a foreign IP, a foreign MAC, an ARP claim for
another's address, an 802.1Q tag, or as a rogue DHCP server never
reaches the wire: the site's frame logger sees none of it and a victim
namespace gets no rogue lease. The same guest without the filter is the
control: there every one of those frames arrives, which shows that the
checks would see them.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import netaddr
import pytest

from flatnet.linux import nwfilter as linux
from flatnet.plan import nwfilter as plan
from tests.functional import netns, vm
from tests.functional.vm_site import SITE_IF, VmSite

pytestmark = [pytest.mark.root, pytest.mark.slow]
PREFIX = f"fnt{os.getpid()}w-"
MAC = "fa:16:3e:aa:00:01"
FAKE_MAC = "fa:16:3e:aa:00:99"
VICTIM_MAC = "fa:16:3e:bb:00:01"


@pytest.fixture(scope="module")
def conn():
    try:
        return vm.connection()
    except vm.VmUnavailable as exc:
        pytest.skip(f"no VM tests: {exc}")


@pytest.fixture
def site(conn, make_netns):
    made = VmSite(make_netns)
    yield made
    made.close()


@pytest.fixture
def filters(conn):
    backend = linux.LibvirtNWFilter()
    sync = linux.NWFilterSync(prune_prefix=PREFIX + plan.INSTANCE_PREFIX)

    def apply(*specs: plan.NicFilterSpec) -> linux.ApplyResult:
        return sync.apply(backend, plan.host_filters(specs, prefix=PREFIX))

    yield apply
    apply()  # instance filters go; then the static ones
    for flt in reversed(plan.static_filters(PREFIX)):
        backend.undefine(flt.name)
    backend.close()


@dataclasses.dataclass
class Evidence:
    guest: vm.Guest
    frames: list[dict[str, object]]
    victim_events: str
    ip: str


def attack(conn, site: VmSite, filterref, *extra: str) -> Evidence:
    """Boot the attacker, let it run every test, collect the evidence."""
    ip, gw = f"{site.prefix}.10", site.gateway
    site.add_host(MAC, ip, "attacker")
    victim = site.victim(VICTIM_MAC)
    run = ";".join([
        f"ping,{gw}", f"get,{site.url}latest/meta-data/instance-id",
        f"spoofip,{site.prefix}.77,{gw}",
        f"spoofmac,{FAKE_MAC.replace(':', '-')},{gw}",
        f"arpspoof,{site.prefix}.66", f"vlan,5,{site.prefix}.55",
        *extra, "rogue-dhcp,8",
    ])  # fmt: skip
    nic = vm.Nic(site.bridge.name, MAC, filterref)
    with vm.booted(conn, nic, f"fnt.run={run}") as guest:
        guest.wait_line("MARK rogue-dhcp-up", 180)
        events = _victim_dhcp(victim, site.dir)
        guest.wait_line("FNT-DONE", 60)
        return Evidence(guest, site.frames(), events, ip)


def _victim_dhcp(ns: str, workdir: pathlib.Path) -> str:
    """udhcpc in the victim namespace (dnsmasq has no entry for it, so
    any offer comes from the rogue); returns its event lines."""
    log = workdir / "victim.log"
    script = workdir / "victim.sh"
    script.write_text(
        f'#!/bin/sh\necho "$1 ip=$ip server=$serverid" >> {log}\n'
    )
    script.chmod(0o755)
    netns.run(["udhcpc", "-i", "eth0", "-n", "-q", "-t", "4", "-T", "1",
               "-s", str(script)], ns, check=False, timeout=30)  # fmt: skip
    return log.read_text() if log.exists() else ""


def _from_guest(ev: Evidence, **match: object) -> list[dict[str, object]]:
    return [
        f for f in ev.frames if all(f.get(k) == v for k, v in match.items())
    ]


def _rc(ev: Evidence, name: str) -> str:
    return ev.guest.results()[name][0]["rc"]


def test_filtered_guest_is_dropped_when_it_spoofs_legit_traffic_passes(
    conn, site, filters
):
    spec = plan.NicFilterSpec(
        "attacker",
        netaddr.EUI(MAC),
        (netaddr.IPAddress(f"{site.prefix}.10"),),
        netaddr.IPAddress(site.gateway),
        netaddr.IPNetwork(f"{site.prefix}.0/24"),
    )
    assert not filters(spec).failed
    name = plan.instance_filter_name("attacker", spec.mac, PREFIX)
    crawl = f"crawl,{site.url}latest/meta-data/"
    ev = attack(conn, site, plan.filterref_element(name), crawl)
    console = "\n".join(ev.guest.lines())
    # legitimate: DHCP lease from dnsmasq, ping and HTTP (TCP) to the site
    assert f"LEASE ip={ev.ip} " in console
    assert f"DHCPACK({SITE_IF}) {ev.ip}" in site.dhcp_log()
    assert _rc(ev, "ping") == "0", console
    assert _rc(ev, "get") == "0", console
    assert "body=i-fnt0001" in console
    # a metadata-style crawl: 2 directories + 2 leaves, all answered
    assert ev.guest.results()["crawl"] == [
        {"rc": "0", "requests": "4", "errors": "0", "args": crawl[6:]}
    ], console
    assert _from_guest(ev, ipsrc=ev.ip, proto=1)  # its pings were seen
    # spoofed IP, MAC, ARP claim, 802.1Q: nothing on the wire
    assert _rc(ev, "spoofip") != "0"
    assert not _from_guest(ev, ipsrc=f"{site.prefix}.77")
    assert not _from_guest(ev, psrc=f"{site.prefix}.77")
    assert _rc(ev, "spoofmac") != "0"
    assert not _from_guest(ev, src=FAKE_MAC)
    assert not _from_guest(ev, psrc=f"{site.prefix}.66")
    assert not _from_guest(ev, vlan=5)
    assert not _from_guest(ev, type="0x8100")
    # rogue DHCP server: no reply left the guest, the victim got nothing
    assert not _from_guest(ev, src=MAC, sport=67)
    assert "bound" not in ev.victim_events, ev.victim_events


def test_unfiltered_guest_reaches_the_wire_control(conn, site):
    ev = attack(conn, site, None)
    console = "\n".join(ev.guest.lines())
    assert f"LEASE ip={ev.ip} " in console
    assert _from_guest(ev, ipsrc=f"{site.prefix}.77"), "spoofed IP not seen"
    assert _from_guest(ev, src=FAKE_MAC), "spoofed MAC not seen"
    assert _from_guest(ev, psrc=f"{site.prefix}.66"), "ARP claim not seen"
    assert _from_guest(ev, vlan=5) or _from_guest(ev, type="0x8100")
    assert f"bound ip={site.prefix}.2" in ev.victim_events, ev.victim_events
    assert f"server={ev.ip}" in ev.victim_events
