"""Neutron export and migration report: literal formats (Neutron's
neutron/agent/linux/dhcp.py), and the report's differences."""

from __future__ import annotations

import dataclasses
import io

import netaddr
import pytest

import flatnet.migrate.neutron_export as nx
from flatnet.migrate import report
from flatnet.migrate.progress import ProgressBar
from flatnet.model import Network

NET = Network(
    id=1, uuid="2c7b3b36-4e5a-5d3c-9b7e-3f1d2a8c0a11", label="private",
    cidr=netaddr.IPNetwork("10.0.0.0/24"),
    gateway=netaddr.IPAddress("10.0.0.1"),
    dhcp_server=netaddr.IPAddress("10.0.0.1"),
    dhcp_start=netaddr.IPAddress("10.0.0.2"),
    broadcast=netaddr.IPAddress("10.0.0.255"),
    netmask=netaddr.IPAddress("255.255.255.0"), bridge="br100",
    bridge_interface="eth1", dns1=netaddr.IPAddress("8.8.4.4"),
)  # fmt: skip
PORT = nx.PortInput(
    network_id=1, mac="fa:16:3e:f2:e0:23",
    address=netaddr.IPAddress("10.0.0.2"), hostname="cirros",
    instance_uuid="6f1d1a9e-8a4e-4c1b-9d52-2b1e7c0d4a10", host="compute-0",
)  # fmt: skip
SUBNET = nx.subnet_ref(NET)
FLAT = report.FlatnetDhcp(dhcp_domain="novalocal", dhcp_lease_time=86400)
PRESERVE = nx.preserving("novalocal", 86400)


def test_hosts_line_with_neutron_defaults():
    assert nx.host_file([PORT], nx.NeutronSettings()) == (
        "fa:16:3e:f2:e0:23,host-10-0-0-2.openstacklocal,10.0.0.2\n"
    )


def test_hosts_line_with_dns_extension_keeps_the_name():
    assert nx.host_file([PORT], PRESERVE) == (
        "fa:16:3e:f2:e0:23,cirros.novalocal.,10.0.0.2\n"
    )
    # dns_name is ignored while dns_domain is Neutron's default
    default_domain = nx.NeutronSettings(dns_extension=True)
    assert nx.host_file([PORT], default_domain) == (
        "fa:16:3e:f2:e0:23,host-10-0-0-2.openstacklocal.,10.0.0.2\n"
    )


def test_addn_hosts_opts_and_leases():
    settings = nx.NeutronSettings()
    assert nx.addn_hosts_file([PORT], settings) == (
        "10.0.0.2\thost-10-0-0-2.openstacklocal host-10-0-0-2\n"
    )
    assert nx.opts_file(NET, settings) == (
        f"tag:subnet-{SUBNET},option:dns-server,8.8.4.4\n"
        f"tag:subnet-{SUBNET},option:router,10.0.0.1"
    )
    assert nx.opts_file(NET, PRESERVE) == (
        f"tag:subnet-{SUBNET},option:router,10.0.0.1"
    )
    assert nx.leases_file([PORT]) == "0 fa:16:3e:f2:e0:23 10.0.0.2 * *\n"


def test_dnsmasq_argv_is_neutrons():
    assert nx.dnsmasq_argv(NET, "/d", nx.NeutronSettings()) == [
        "dnsmasq", "--no-hosts", "--no-resolv", "--pid-file=/d/pid",
        "--dhcp-hostsfile=/d/host", "--addn-hosts=/d/addn_hosts",
        "--dhcp-optsfile=/d/opts", "--dhcp-leasefile=/d/leases",
        "--dhcp-match=set:ipxe,175", "--dhcp-userclass=set:ipxe6,iPXE",
        "--local-service", "--bind-dynamic",
        f"--dhcp-range=set:subnet-{SUBNET},10.0.0.0,static,255.255.255.0,"
        "86400s",
        "--dhcp-option-force=option:mtu,1500", "--dhcp-lease-max=256",
        "--conf-file=/dev/null", "--domain=openstacklocal",
    ]  # fmt: skip


def test_api_bodies():
    assert nx.port_body(NET, PORT, PRESERVE) == {
        "port": {
            "network_id": NET.uuid,
            "mac_address": "fa:16:3e:f2:e0:23",
            "fixed_ips": [{"subnet_id": SUBNET, "ip_address": "10.0.0.2"}],
            "device_id": PORT.instance_uuid,
            "device_owner": "compute:nova",
            "binding:host_id": "compute-0",
            "admin_state_up": True,
            "dns_name": "cirros",
        }
    }
    assert (
        "dns_name" not in nx.port_body(NET, PORT, nx.NeutronSettings())["port"]
    )
    pools = nx.allocation_pools(NET, [netaddr.IPAddress("10.0.0.50")])
    assert pools == [
        {"start": "10.0.0.2", "end": "10.0.0.49"},
        {"start": "10.0.0.51", "end": "10.0.0.254"},
    ]
    subnet = nx.subnet_body(NET, pools, nx.NeutronSettings())["subnet"]
    assert (subnet["cidr"], subnet["gateway_ip"], subnet["enable_dhcp"]) == (
        "10.0.0.0/24", "10.0.0.1", True)  # fmt: skip
    assert subnet["dns_nameservers"] == ["8.8.4.4"]
    network = nx.network_body(NET, nx.NeutronSettings())["network"]
    assert network["provider:network_type"] == "flat"


def test_dhcp_port_address():
    pools = nx.allocation_pools(NET, [])
    assert (
        str(nx.dhcp_port_address(NET, [PORT], pools, PRESERVE)) == "10.0.0.1"
    )
    auto = nx.dhcp_port_address(NET, [PORT], pools, nx.NeutronSettings())
    assert str(auto) == "10.0.0.3"  # first pool address no port holds


def _report(settings: nx.NeutronSettings) -> list[dict[str, str]]:
    export = report.build_export([NET], [PORT], {}, settings)
    return report.guest_report(
        [NET], [PORT], export.dhcp_ports, FLAT, settings
    )


def test_report_with_neutron_defaults_names_each_difference():
    found = {d["field"]: d for d in _report(nx.NeutronSettings())}
    assert set(found) == {"hostname", "domain", "dns", "serverid"}
    name = found["hostname"]["flatnet"] + "." + found["domain"]["flatnet"]
    new = found["hostname"]["neutron"] + "." + found["domain"]["neutron"]
    assert (name, new) == ("cirros.novalocal", "host-10-0-0-2.openstacklocal")
    assert "dns_domain = novalocal" in found["domain"]["setting"]
    assert found["serverid"]["neutron"] == "10.0.0.3"
    assert "10.0.0.1" in found["serverid"]["setting"]


def test_report_is_empty_with_the_preserving_settings():
    assert _report(PRESERVE) == []
    assert report.report_table([]).startswith("no differences")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (dataclasses.replace(PRESERVE, mtu=9000), "mtu"),
        (dataclasses.replace(PRESERVE, dhcp_lease_duration=600), "lease"),
    ],
)  # fmt: skip
def test_each_setting_shows_up(settings, field):
    assert [d["field"] for d in _report(settings)] == [field]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = ProgressBar(stream, "import", 5000)
        bar.advance(5000)
        bar.close()
    assert "\rimport [" in tty.getvalue()
    assert "100% 5000/5000" in tty.getvalue()
    assert pipe.getvalue() == ""
    small = _Tty()
    ProgressBar(small, "import", 10).advance(10)
    assert small.getvalue() == ""


def test_sharded_network_guest_sees_its_shard_as_server_id():
    flat = dataclasses.replace(
        FLAT, shard_servers={str(PORT.address): "10.0.0.250"}
    )
    view = report.flatnet_view(NET, PORT, flat)
    assert view["serverid"] == "10.0.0.250"
    assert view["dns"] == str(report.flatnet_view(NET, PORT, FLAT)["dns"])
    found = report.guest_report(
        [NET],
        [PORT],
        {
            NET.id: netaddr.IPAddress(
                report.flatnet_view(NET, PORT, FLAT)["dns"]
            )
        },
        flat,
        nx.preserving("novalocal", 86400),
    )
    assert [d["field"] for d in found] == ["serverid"]
    assert found[0]["flatnet"] == "10.0.0.250"
    assert found[0]["setting"] == report.SHARD_REMEDY
