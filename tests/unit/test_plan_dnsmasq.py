"""plan/dnsmasq.py: nova's literal argv and file texts (nova
tests/unit/network/test_linux_net.py: _test_dnsmasq_execute and the
hosts/opts/leases expectations)."""

from __future__ import annotations

import dataclasses

import netaddr
import pytest

from flatnet import exception
from flatnet.linux import journal
from flatnet.model import HostEntry, Lease, Network
from flatnet.plan import dnsmasq as plan

NP = "/var/lib/flatnet/networks"
NOVA_ARGV_FAKE = [
    "env",
    'CONFIG_FILE=["/etc/nova/nova-dhcpbridge.conf"]',
    "NETWORK_ID=fake",
    "dnsmasq",
    "--strict-order",
    "--bind-interfaces",
    "--conf-file=",
    f"--pid-file={NP}/nova-br100.pid",
    f"--dhcp-optsfile={NP}/nova-br100.opts",
    "--listen-address=10.0.0.1",
    "--except-interface=lo",
    "--dhcp-range=set:fake,1.0.0.2,static,255.255.255.0,86400s",
    "--dhcp-lease-max=256",
    f"--dhcp-hostsfile={NP}/nova-br100.conf",
    "--dhcp-script=/usr/bin/nova-dhcpbridge",
    "--no-hosts",
    "--leasefile-ro",
    "--domain=novalocal",
]


def _network(**kw: object) -> Network:
    values: dict[str, object] = {
        "id": 1,
        "uuid": "u",
        "label": "private",
        "cidr": netaddr.IPNetwork("10.0.0.0/24"),
        "gateway": netaddr.IPAddress("10.0.0.1"),
        "dhcp_server": netaddr.IPAddress("10.0.0.1"),
        "dhcp_start": netaddr.IPAddress("10.0.0.2"),
        "broadcast": netaddr.IPAddress("10.0.0.255"),
        "netmask": netaddr.IPAddress("255.255.255.0"),
        "bridge": "br100",
        "bridge_interface": "eth1",
        "dns1": netaddr.IPAddress("8.8.4.4"),
    }
    values.update(kw)
    return Network(**values)  # type: ignore[arg-type]


def _settings(**kw: object) -> plan.DhcpSettings:
    values: dict[str, object] = {
        "networks_path": NP,
        "dhcpbridge": "/usr/bin/nova-dhcpbridge",
        "dhcpbridge_flagfile": ("/etc/nova/nova-dhcpbridge.conf",),
        "dhcp_hostsdir": False,
        "dhcp_script_fast_path": False,
    }
    values.update(kw)
    return plan.DhcpSettings(**values)  # type: ignore[arg-type]


def _fake_spec(**kw: object) -> plan.DnsmasqSpec:
    """nova's _test_dnsmasq_execute fixture (id/label 'fake')."""
    net = _network(dhcp_start=netaddr.IPAddress("1.0.0.2"), label="fake")
    spec = plan.dnsmasq_spec(net, _settings(**kw))
    return dataclasses.replace(spec, network_id="fake")


def test_argv_is_novas_literal_argv():
    assert plan.dnsmasq_argv(_fake_spec()) == NOVA_ARGV_FAKE


def test_argv_without_domain_omits_the_flag():
    argv = plan.dnsmasq_argv(_fake_spec(dhcp_domain=""))
    assert argv == NOVA_ARGV_FAKE[:-1]


def test_argv_with_dns_servers():
    argv = plan.dnsmasq_argv(_fake_spec(dns_server=("1.1.1.1", "2.2.2.2")))
    assert argv == [
        *NOVA_ARGV_FAKE,
        "--no-resolv",
        "--server=1.1.1.1",
        "--server=2.2.2.2",
    ]


def test_argv_with_network_dns_servers():
    argv = plan.dnsmasq_argv(_fake_spec(use_network_dns_servers=True))
    assert argv == [*NOVA_ARGV_FAKE, "--no-resolv", "--server=8.8.4.4"]


def test_dns_servers_deduplicated_and_option_never_mutated():
    servers = ("8.8.4.4", "1.1.1.1", "8.8.4.4")
    settings = _settings(dns_server=servers, use_network_dns_servers=True)
    for _ in range(3):  # nova restart_dhcp: repeated launches grew it
        spec = plan.dnsmasq_spec(_network(), settings)
        assert spec.dns_servers == ("8.8.4.4", "1.1.1.1")
    assert settings.dns_server == servers


def test_bad_dns_server_is_a_config_error():
    with pytest.raises(exception.ConfigError, match="dns_server"):
        plan.dnsmasq_spec(_network(), _settings(dns_server=("x\ny",)))


def test_real_flatdhcp_network_argv():
    argv = plan.dnsmasq_argv(plan.dnsmasq_spec(_network(), _settings()))
    assert argv[2] == "NETWORK_ID=1"
    assert "--listen-address=10.0.0.1" in argv
    assert (
        "--dhcp-range=set:private,10.0.0.2,static,255.255.255.0,86400s" in argv
    )


def test_multi_host_passes_addn_hosts_after_domain():
    spec = plan.dnsmasq_spec(_network(multi_host=True), _settings())
    argv = plan.dnsmasq_argv(spec)
    assert argv[-2:] == [
        "--domain=novalocal",
        f"--addn-hosts={NP}/nova-br100.hosts",
    ]


def test_flatnet_additions_substitute_script_and_append_hostsdir():
    nova = plan.dnsmasq_argv(plan.dnsmasq_spec(_network(), _settings()))
    ours = plan.dnsmasq_argv(
        plan.dnsmasq_spec(
            _network(),
            _settings(dhcp_hostsdir=True, dhcp_script_fast_path=True),
        )
    )
    expected = list(nova)
    expected.insert(3, f"FLATNET_EVENTS={NP}/nova-br100.events")
    expected[expected.index("--dhcp-script=/usr/bin/nova-dhcpbridge")] = (
        f"--dhcp-script={NP}/flatnet-dhcp-script"
    )
    expected.append(f"--addn-hosts={NP}/nova-br100.hosts")
    expected.append(f"--hostsdir={NP}/nova-br100.hd")
    expected.append(f"--dhcp-hostsdir={NP}/nova-br100.d")
    assert ours == expected


def test_hostsdir_on_multi_host_keeps_nova_addn_hosts_once():
    argv = plan.dnsmasq_argv(
        plan.dnsmasq_spec(
            _network(multi_host=True), _settings(dhcp_hostsdir=True)
        )
    )
    assert argv.count(f"--addn-hosts={NP}/nova-br100.hosts") == 1
    assert argv[-2:] == [
        f"--hostsdir={NP}/nova-br100.hd",
        f"--dhcp-hostsdir={NP}/nova-br100.d",
    ]


def test_short_addn_hosts_lines_carry_fqdn_and_name():
    entry = NW0[0]
    name = plan.safe_hostname(entry.hostname, entry.address)
    assert plan.addn_hosts_file([entry], "novalocal", short=True) == (
        f"{entry.address}\t{name}.novalocal\t{name}\n"
    )
    assert plan.addn_hosts_line(entry, "", True) == f"{entry.address}\t{name}"
    lines = plan.dns_host_lines([entry], "novalocal")
    assert lines == {
        plan.mac_text(entry.mac): f"{entry.address}\t{name}.novalocal\t{name}"
    }


def test_label_cannot_inject_into_dhcp_range():
    spec = plan.dnsmasq_spec(_network(label="a,b c\nd"), _settings())
    assert "--dhcp-range=set:a_b_c_d,10.0.0.2,static,255.255.255.0,86400s" in (
        plan.dnsmasq_argv(spec)
    )


def test_bad_domain_and_relative_path_are_config_errors():
    with pytest.raises(exception.ConfigError, match="dhcp_domain"):
        plan.dnsmasq_spec(_network(), _settings(dhcp_domain="a b"))
    with pytest.raises(exception.ConfigError, match="absolute"):
        plan.dnsmasq_paths("relative/dir", "br100")


# --- hosts/opts files (nova test_linux_net) ---------------------------
def _entry(n: int, ip: str, name: str) -> HostEntry:
    return HostEntry(
        mac=netaddr.EUI(f"DE:AD:BE:EF:00:0{n}"),
        address=netaddr.IPAddress(ip),
        hostname=name,
        vif_id=n,
    )


NW0 = [
    _entry(0, "192.168.0.100", "fake_instance00"),
    _entry(3, "192.168.1.101", "fake_instance01"),
    _entry(4, "192.168.0.102", "fake_instance00"),
]


def test_hosts_file_single_default_gateway_tags():
    # nova keeps DB order and the stored MAC case; flatnet sorts by
    # address and writes lower-case MACs.
    assert plan.hosts_file(NW0, "novalocal", tag_vif=True) == (
        "de:ad:be:ef:00:00,fake_instance00.novalocal,192.168.0.100,net:NW-0\n"
        "de:ad:be:ef:00:04,fake_instance00.novalocal,192.168.0.102,net:NW-4\n"
        "de:ad:be:ef:00:03,fake_instance01.novalocal,192.168.1.101,net:NW-3\n"
    )


def test_host_line_plain():
    assert plan.host_line(NW0[0], "novalocal") == (
        "de:ad:be:ef:00:00,fake_instance00.novalocal,192.168.0.100"
    )


def test_hostname_truncation_is_novas():
    name = (
        "really_long_fake_instance02_to_test_hostname_truncation_when_too_long"
    )
    entry = _entry(7, "192.168.2.100", name)
    assert plan.host_line(entry, "novalocal") == (
        "de:ad:be:ef:00:07,re-ng_fake_instance02_to_test_hostname_"
        "truncation_when_too_long.novalocal,192.168.2.100"
    )
    assert len(plan.safe_hostname(name, entry.address)) == 63


def test_one_line_per_mac_first_address_wins():
    twice = [
        _entry(1, "10.0.0.9", "a"),
        _entry(1, "10.0.0.3", "a"),
    ]
    assert plan.hosts_file(twice, "d") == "de:ad:be:ef:00:01,a.d,10.0.0.3\n"


@pytest.mark.parametrize(
    "hostile",
    [
        "evil\ndhcp-host=00:11:22:33:44:55,10.0.0.66",
        "a,b,10.0.0.99",
        "x#comment",
        "sp ace\ttab",
        "\r\n",
        "-leading-dash",
        "é",
        "x" * 5000,
    ],
)
def test_hostile_hostnames_never_break_a_line(hostile: str):
    entry = _entry(1, "10.0.0.5", hostile)
    text = plan.hosts_file([entry], "novalocal")
    assert text.count("\n") == 1
    assert text.endswith("\n")
    mac, fqdn, ip = text.strip().split(",")
    assert (mac, ip) == ("de:ad:be:ef:00:01", "10.0.0.5")
    label = fqdn.removesuffix(".novalocal")
    assert 0 < len(label) <= 63
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in label)
    assert label[0].isalnum()
    leases = plan.leases_text(
        [Lease(entry.mac, entry.address, hostile)], now=100, lease_time=10
    )
    assert leases.count("\n") == 1
    assert len(leases.split(" ")) == 5


def test_empty_hostname_falls_back_to_address():
    assert plan.safe_hostname("", netaddr.IPAddress("10.0.0.5")) == (
        "host-10-0-0-5"
    )


def test_opts_file_variants():
    gw = netaddr.IPAddress("192.168.0.1")
    assert plan.opts_file(gw) == "3,192.168.0.1\n"
    assert plan.opts_file(None) == "3\n"
    assert plan.opts_file(gw, NW0, True, default_route_vifs={0}) == (
        "NW-0,3,192.168.0.1\nNW-3,3\nNW-4,3\n"
    )


def test_opts_gateway_per_host_on_multi_host():
    net = _network(multi_host=True, dhcp_server=netaddr.IPAddress("10.0.0.9"))
    assert plan.opts_gateway(net, False) == netaddr.IPAddress("10.0.0.9")
    assert plan.opts_gateway(net, True) == netaddr.IPAddress("10.0.0.1")


def test_addn_hosts_file():
    assert plan.addn_hosts_file(NW0[:1], "novalocal") == (
        "192.168.0.100\tfake_instance00.novalocal\n"
    )


def test_leases_text():
    leases = [
        Lease(
            netaddr.EUI("fa:16:3e:00:00:02"),
            netaddr.IPAddress("10.0.0.4"),
            None,
        ),
        Lease(
            netaddr.EUI("FA:16:3E:00:00:01"),
            netaddr.IPAddress("10.0.0.3"),
            "vm1",
        ),
    ]
    assert plan.leases_text(leases, now=1000, lease_time=86400) == (
        "87400 fa:16:3e:00:00:01 10.0.0.3 vm1 *\n"
        "87400 fa:16:3e:00:00:02 10.0.0.4 * *\n"
    )


def test_missing_dhcp_address_is_invalid_input():
    with pytest.raises(exception.InvalidInput):
        plan.dnsmasq_spec(
            _network(dhcp_server=None, gateway=None), _settings()
        )


@pytest.mark.parametrize(
    ("lease", "now"),
    [
        (
            Lease(
                netaddr.EUI("fa:16:3e:00:00:01"),
                netaddr.IPAddress("::1"),
                None,
            ),
            1,
        ),
        (
            Lease(
                netaddr.EUI("fa:16:3e:00:00:01"),
                netaddr.IPAddress("10.0.0.3"),
                None,
            ),
            -5000,
        ),
        (
            Lease(
                netaddr.EUI("fa:16:3e:00:00:01"),
                netaddr.IPAddress("10.0.0.3"),
                None,
            ),
            10**25,
        ),
    ],
)
def test_leases_text_refuses_a_line_of_the_wrong_shape(lease, now):
    with pytest.raises(exception.InvalidInput, match="bad init line"):
        plan.leases_text([lease], now=now, lease_time=10)


def test_snapshot_path_sits_beside_the_journal():
    paths = plan.dnsmasq_paths("/var/lib/flatnet/networks", "br100")
    assert paths.init == "/var/lib/flatnet/networks/nova-br100.init"
    assert paths.init == paths.events.removesuffix(".events") + ".init"
    # the hooks derive the loss file from $FLATNET_EVENTS the same way
    assert paths.lost == journal.loss_path(paths.events)
