"""libvirt's nwfilter rules and flatnet's iptables chains in one
namespace (the root one: libvirtd instantiates filters there).

A guest's interface refers to flatnet's instance filter plus an L4
filter, so libvirt writes ebtables rules (libvirt-I/O-<tap>) and
iptables-nft chains (libvirt-in/out/host-in, FI-/FO-/HI-<tap>) while
flatnet's RestoreBackend (flatnet/linux/iptables_restore.py, the nft
``iptables``) owns a chain and a FORWARD jump of its own. Neither side
hides, reorders or removes the other's rules: each set is compared
before and after the other side acts (libvirt instantiating and
tearing down; flatnet applying, verifying and removing).
"""

from __future__ import annotations

import os
import re

import netaddr
import pytest

from flatnet.linux import nwfilter as linux
from flatnet.linux.iptables_restore import RestoreBackend
from flatnet.plan import iptables as ipt
from flatnet.plan import nwfilter as plan
from tests.functional import netns, vm

pytestmark = [pytest.mark.root]
PREFIX = f"fnt{os.getpid()}c-"
IPT_PREFIX = f"fntcx{os.getpid() % 100000}"
MAC = "fa:16:3e:cc:00:01"


@pytest.fixture(scope="module")
def conn():
    try:
        return vm.connection()
    except vm.VmUnavailable as exc:
        pytest.skip(f"no VM tests: {exc}")


def filter_lines() -> list[str]:
    return netns.run(["iptables-save", "-t", "filter"]).stdout.splitlines()


def libvirt_lines(lines: list[str], tap: str | None = None) -> list[str]:
    """libvirt's lines (its chains and the jumps into them), in order."""
    pat = re.compile(r"libvirt-|[FH][IO]-" + (tap or "fntvt"))
    return [ln for ln in lines if pat.search(ln) and "[" not in ln]


def our_lines(lines: list[str]) -> list[str]:
    return [ln for ln in lines if IPT_PREFIX in ln and "[" not in ln]


def ruleset(bridge: str, on: bool = True) -> ipt.RuleSet:
    chain = f"{IPT_PREFIX}-probe"
    table = ipt.Table(
        "filter",
        chains=(ipt.Chain(chain, (f"-i {bridge} -j RETURN",)),) if on else (),
        anchors=(ipt.Anchor("FORWARD", f"-j {chain}"),) if on else (),
    )
    return ipt.RuleSet(IPT_PREFIX, {"filter": table})


def probe_filter(instance: str) -> plan.NWFilter:
    """The instance filter plus nova's L4 filter: libvirt needs iptables
    for the latter, so both writers meet in the filter table."""
    return plan.NWFilter(
        PREFIX + "probe",
        "root",
        (
            plan.FilterRef(instance),
            plan.FilterRef(
                PREFIX + "nova-allow-dhcp-server",
                (("DHCPSERVER", "10.97.0.1"),),
            ),
        ),
    )


def test_libvirt_and_flatnet_rules_coexist(conn):
    backend = linux.LibvirtNWFilter()
    spec = plan.NicFilterSpec(
        "coexist",
        netaddr.EUI(MAC),
        (netaddr.IPAddress("10.97.0.5"),),
        netaddr.IPAddress("10.97.0.1"),
        netaddr.IPNetwork("10.97.0.0/24"),
    )
    want = plan.host_filters([spec], prefix=PREFIX)
    probe = probe_filter(want[-1].name)
    libvirt_before = libvirt_lines(filter_lines())
    bridge = vm.TestBridge().create()
    iptables = RestoreBackend("iptables")
    guest = None
    try:
        linux.NWFilterSync(PREFIX).apply(backend, (*want, probe))
        iptables.apply(ruleset(bridge.name))
        ours = our_lines(filter_lines())
        assert ours, "flatnet's chain is not there"
        nic = vm.Nic(bridge.name, MAC, plan.filterref_element(probe.name))
        guest = vm.Guest(conn, nic, paused=True)
        # libvirt instantiated its rules; ours are as they were
        during = filter_lines()
        theirs = libvirt_lines(during, nic.tap)
        assert any(f"FO-{nic.tap}" in ln for ln in theirs), during
        ebt = netns.run(["ebtables", "-t", "nat", "-L"]).stdout
        assert f"libvirt-I-{nic.tap}" in ebt
        # flatnet's guards became ebtables rules on the guest's port
        # (RA and DHCPv6 are checked here; the rest on the wire too)
        for rule in (
            "-p IPv4 --ip-proto udp --ip-sport 67 -j DROP",
            "-p IPv6 --ip6-proto udp --ip6-sport 547 -j DROP",
            "--ip6-icmp-type router-advertisement -j DROP",
        ):
            assert rule in ebt, ebt
        root = ebt.split(f"chain: libvirt-I-{nic.tap},")[1].split("\n\n")[0]
        assert [ln for ln in root.split("\n") if ln][-4:] == [
            "-p ARP -j ACCEPT", "-p IPv4 -j ACCEPT", "-p IPv6 -j ACCEPT",
            "-j DROP",
        ], root  # fmt: skip
        assert our_lines(during) == ours
        # flatnet verifies and re-applies: nothing of libvirt's moves
        iptables.apply(ruleset(bridge.name), verify=True)
        assert libvirt_lines(filter_lines(), nic.tap) == theirs
        assert our_lines(filter_lines()) == ours
        # the guest goes: libvirt removes its per-tap rules, not ours
        guest.destroy()
        guest = None
        after = filter_lines()
        assert not [ln for ln in after if nic.tap in ln]
        assert our_lines(after) == ours
        # flatnet removes its part: libvirt's remaining chains stay
        left = libvirt_lines(after)
        iptables.apply(ruleset(bridge.name, on=False))
        assert our_lines(filter_lines()) == []
        assert libvirt_lines(filter_lines()) == left
    finally:
        if guest is not None:
            guest.destroy()
        iptables.apply(ruleset(bridge.name, on=False))
        bridge.close()
        for flt in (probe, *reversed(want)):
            backend.undefine(flt.name)
        _remove_libvirt_leftovers(libvirt_before)
        backend.close()


def _remove_libvirt_leftovers(before: list[str]) -> None:
    """libvirt leaves its empty top-level chains (and the INPUT/FORWARD
    jumps) after the last filtered guest: remove them if this test made
    them, as the sandbox rules ask."""
    if before:
        return
    for chain, parent in (
        ("libvirt-host-in", "INPUT"),
        ("libvirt-in", "FORWARD"),
        ("libvirt-out", "FORWARD"),
        ("libvirt-in-post", "FORWARD"),
    ):
        netns.run(["iptables", "-w", "-D", parent, "-j", chain], check=False)
        netns.run(["iptables", "-w", "-X", chain], check=False)
