"""plan/dhcp_shards.py: the sharded network's namespaces, argv, nft."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.model import DhcpShard, HostEntry
from flatnet.plan import dhcp_shards as shards
from flatnet.plan import dnsmasq as plan
from tests.unit.test_plan_dnsmasq import NP, _network

SETTINGS = plan.DhcpSettings(
    networks_path=NP, dhcpbridge="/usr/bin/flatnet-dhcpbridge"
)


def _plan(count: int = 2) -> shards.ShardedPlan:
    rows = [
        DhcpShard(1, k, netaddr.IPAddress(f"10.0.0.{254 - k}"))
        for k in range(count)
    ]
    return shards.sharded_plan(_network(), SETTINGS, rows)


def test_shard_argv_is_the_measured_recipe() -> None:
    s1 = _plan().shards[1]
    assert s1.netns == "fn-br100-s1"
    assert s1.veth == "br100-s1"
    assert s1.prefixlen == 24
    assert list(s1.argv) == [
        "env",
        "CONFIG_FILE=[]",
        "NETWORK_ID=1",
        f"FLATNET_EVENTS={NP}/nova-br100-s1.events",
        "dnsmasq",
        "--strict-order",
        "--bind-interfaces",
        "--conf-file=",
        f"--pid-file={NP}/nova-br100-s1.pid",
        f"--dhcp-optsfile={NP}/nova-br100.opts",
        "--listen-address=10.0.0.253",
        "--except-interface=lo",
        "--dhcp-range=set:private,10.0.0.2,static,255.255.255.0,86400s",
        "--dhcp-lease-max=256",
        f"--dhcp-hostsfile={NP}/nova-br100-s1.conf",
        f"--dhcp-luascript={NP}/flatnet-lease-hook.lua",
        "--dhcp-authoritative",
        "--script-on-renewal",
        "--no-hosts",
        "--leasefile-ro",
        "--quiet-dhcp",
        "--domain=novalocal",
        "--port=0",
        "--dhcp-ignore=tag:!known",
        "--dhcp-option=6,10.0.0.1",
        f"--dhcp-hostsdir={NP}/nova-br100-s1.d",
    ]


@pytest.mark.parametrize(
    ("hook", "fast"), [("sh", True), ("sh", False), ("lua", True)]
)
def test_shards_journal_with_the_lua_hook_whatever_the_option(
    hook: str, fast: bool
) -> None:
    """nova's sh argv is for one dnsmasq; a shard always forks no hook
    (the issue's "use it for the journal"), into its own journal."""
    settings = plan.DhcpSettings(
        networks_path=NP,
        dhcpbridge="/usr/bin/flatnet-dhcpbridge",
        dhcp_lease_hook=hook,
        dhcp_script_fast_path=fast,
    )
    rows = [DhcpShard(1, 0, netaddr.IPAddress("10.0.0.254"))]
    argv = shards.sharded_plan(_network(), settings, rows).shards[0].argv
    assert f"FLATNET_EVENTS={NP}/nova-br100-s0.events" in argv
    assert f"--dhcp-luascript={NP}/flatnet-lease-hook.lua" in argv
    assert not [a for a in argv if a.startswith("--dhcp-script")]


def test_dns_only_server_has_no_dhcp_range() -> None:
    argv = _plan().dns_argv
    assert not [a for a in argv if a.startswith("--dhcp")]
    assert "--listen-address=10.0.0.1" in argv
    assert argv[-2:] == (
        f"--addn-hosts={NP}/nova-br100.hosts",
        f"--hostsdir={NP}/nova-br100.hd",
    )
    assert _plan().dns_pid == f"{NP}/nova-br100-dns.pid"


def test_every_shard_has_its_own_files() -> None:
    paths = [s.paths for s in _plan(3).shards]
    for field in ("hosts", "pid", "events", "hostsdir", "init", "lost"):
        assert len({getattr(p, field) for p in paths}) == 3
    assert {p.opts for p in paths} == {f"{NP}/nova-br100.opts"}


def test_nft_ruleset_steers_each_port_to_its_macs() -> None:
    macs = {0: [netaddr.EUI("FA-16-3E-00-00-02")], 1: []}
    text = shards.nft_ruleset(_plan(), macs)
    assert text.splitlines()[:3] == [
        "table bridge flatnet_br100",
        "delete table bridge flatnet_br100",
        "table bridge flatnet_br100 {",
    ]
    assert (
        "set s0 { type ether_addr; elements = { fa:16:3e:00:00:02 }; }" in text
    )
    assert "set s1 { type ether_addr; }" in text
    assert 'oifname "br100-s1" udp dport 67 ether saddr != @s1 drop' in text
    add = shards.nft_add_members("flatnet_br100", 1, macs[0])
    assert add == "add element bridge flatnet_br100 s1 { fa:16:3e:00:00:02 }\n"
    assert shards.nft_add_members("flatnet_br100", 1, []) == ""


def test_long_bridge_names_get_short_unique_veths() -> None:
    a = shards.shard_veth("abcdefghijklmn", 3)
    b = shards.shard_veth("abcdefghijklmo", 3)
    assert len(a) <= 15
    assert len(b) <= 15
    assert a != b
    assert shards.nft_table("br-ex.1") == "flatnet_br_ex_1"


@pytest.mark.parametrize("bad", ["", "br 100", 'br"1', "a" * 16, "br\n"])
def test_bad_bridge_names_are_refused(bad: str) -> None:
    with pytest.raises(exception.InvalidInput):
        shards.shard_netns(bad, 0)


def test_shard_address_outside_the_network_is_refused() -> None:
    row = DhcpShard(1, 0, netaddr.IPAddress("192.0.2.1"))
    with pytest.raises(exception.InvalidInput):
        shards.sharded_plan(_network(), SETTINGS, [row])


def test_by_shard_skips_hosts_without_a_shard() -> None:
    def entry(last: int, shard: int | None) -> HostEntry:
        return HostEntry(
            mac=netaddr.EUI(0xFA163E000000 + last),
            address=netaddr.IPAddress(f"10.0.0.{last}"),
            hostname=f"h{last}",
            shard=shard,
        )

    grouped = shards.by_shard([entry(2, 0), entry(3, 1), entry(4, None)], 2)
    assert [e.address.words[-1] for e in grouped[0]] == [2]
    assert [e.address.words[-1] for e in grouped[1]] == [3]


def test_mac_text_is_netaddrs_unix_expanded_lower_case() -> None:
    """The fast EUI-48 path renders exactly what netaddr's dialect did."""
    for value in (0, 1, 0xFA163E000001, 0xFFFFFFFFFFFF, 0x0A0B0C0D0E0F):
        mac = netaddr.EUI(value)
        slow = str(netaddr.EUI(mac, dialect=netaddr.mac_unix_expanded))
        assert plan.mac_text(mac) == slow.lower()
    assert plan.mac_text(netaddr.EUI("FA-16-3E-AB-CD-EF")) == (
        "fa:16:3e:ab:cd:ef"
    )
