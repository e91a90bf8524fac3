"""flatnet.plan.host_rules: nova's literal rule strings (nova linux_net
init_host, metadata_forward, floating_forward_rules and their tests)."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.model import FloatingIp, Network
from flatnet.plan import host_rules as hr

NOVA_TEST = hr.HostRulesSettings(
    public_interface="eth1",
    routing_source_ip="172.16.0.1",
    metadata_host="172.16.0.1",
    dmz_cidr=("10.0.3.0/24",),
)


def network(
    net_id=1, cidr="10.0.0.0/24", bridge="br100", dhcp=True, dhcp_server=None
):
    net = netaddr.IPNetwork(cidr)
    gw = netaddr.IPAddress(net.first + 1)
    return Network(
        id=net_id,
        uuid=f"u{net_id}",
        label=f"n{net_id}",
        cidr=net,
        gateway=gw,
        dhcp_server=gw if dhcp_server is None else dhcp_server,
        dhcp_start=None,
        broadcast=net.broadcast,
        netmask=net.netmask,
        bridge=bridge,
        bridge_interface=None,
        enable_dhcp=dhcp,
    )


def floating(address="10.10.10.10", fixed="10.0.0.1", interface="eth0"):
    return FloatingIp(
        id=1,
        address=netaddr.IPAddress(address),
        pool="nova",
        interface=interface,
        fixed_address=None if fixed is None else netaddr.IPAddress(fixed),
    )


def test_init_host_lines_are_novas():
    rs = hr.host_ruleset([network()], [], NOVA_TEST)
    lines = rs.lines()
    assert (
        "-A nova-network-snat -s 10.0.0.0/24 -d 0.0.0.0/0 -j SNAT "
        "--to-source 172.16.0.1 -o eth1"
    ) in lines
    post = [
        line
        for line in lines
        if line.startswith("-A nova-network-POSTROUTING -s")
    ]
    assert post == [
        "-A nova-network-POSTROUTING -s 10.0.0.0/24 -d 172.16.0.1/32 "
        "-j ACCEPT",
        "-A nova-network-POSTROUTING -s 10.0.0.0/24 -d 10.0.3.0/24 -j ACCEPT",
        "-A nova-network-POSTROUTING -s 10.0.0.0/24 -d 10.0.0.0/24 "
        "-m conntrack ! --ctstate DNAT -j ACCEPT",
    ]


def test_add_snat_rule_variants_are_novas():
    s = hr.HostRulesSettings(
        public_interface="eth0",
        routing_source_ip="10.10.10.1",
        force_snat_range=("10.10.10.0/24",),
    )
    assert hr.snat_rules("10.0.0.0/24", s) == [
        "-s 10.0.0.0/24 -d 0.0.0.0/0 -j SNAT --to-source 10.10.10.1 -o eth0"
    ]
    assert hr.snat_rules("10.0.0.0/24", s, is_external=True) == [
        "-s 10.0.0.0/24 -d 10.10.10.0/24 -j SNAT --to-source 10.10.10.1"
    ]
    none = hr.HostRulesSettings(routing_source_ip="10.10.10.1")
    assert hr.snat_rules("10.0.0.0/24", none, is_external=True) == []
    assert hr.snat_rules("10.0.0.0/24", hr.HostRulesSettings()) == []


def test_external_dhcp_is_detected():
    assert not hr.is_external(network())
    assert hr.is_external(network(dhcp_server=netaddr.IPAddress("10.0.0.250")))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (
            "10.10.10.1",
            "-s 0.0.0.0/0 -d 169.254.169.254/32 -p tcp -m tcp "
            "--dport 80 -j DNAT --to-destination 10.10.10.1:8775",
        ),
        (
            "127.0.0.1",
            "-s 0.0.0.0/0 -d 169.254.169.254/32 -p tcp -m tcp "
            "--dport 80 -j REDIRECT --to-ports 8775",
        ),
    ],
)
def test_metadata_forward(host, expected):
    s = hr.HostRulesSettings(metadata_host=host, metadata_port=8775)
    assert hr.metadata_forward_rule(s) == expected
    assert (
        f"-A nova-network-PREROUTING {expected}"
        in hr.host_ruleset([], [], s).lines()
    )


def test_dhcp_accepts_checksum_and_forward():
    assert hr.dhcp_accept_rules("br100") == [
        "-i br100 -p udp -m udp --dport 67 -j ACCEPT",
        "-i br100 -p tcp -m tcp --dport 67 -j ACCEPT",
        "-i br100 -p udp -m udp --dport 53 -j ACCEPT",
        "-i br100 -p tcp -m tcp --dport 53 -j ACCEPT",
    ]
    assert hr.checksum_rule("br100") == (
        "-o br100 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill"
    )
    assert hr.forward_rules("br100", hr.HostRulesSettings()) == [
        "-i br100 -j ACCEPT",
        "-o br100 -j ACCEPT",
    ]
    only = hr.HostRulesSettings(
        forward_bridge_interface=("eth2",), iptables_drop_action="REJECT"
    )
    assert hr.forward_rules("br100", only) == [
        "-i br100 -o eth2 -j ACCEPT",
        "-i eth2 -o br100 -j ACCEPT",
        "-i br100 -o br100 -j ACCEPT",
        "-i br100 -j REJECT",
        "-o br100 -j REJECT",
    ]


def test_rules_land_in_novas_chains():
    lines = hr.host_ruleset([network()], [], NOVA_TEST).lines()
    assert (
        "-A nova-network-INPUT -i br100 -p udp -m udp --dport 67 -j ACCEPT"
    ) in lines
    assert "-A nova-network-FORWARD -i br100 -j ACCEPT" in lines
    assert (
        "-A nova-network-POSTROUTING -o br100 -p udp -m udp --dport 68 "
        "-j CHECKSUM --checksum-fill"
    ) in lines


def test_network_without_dhcp_gets_only_forward_rules():
    lines = hr.host_ruleset([network(dhcp=False)], [], NOVA_TEST).lines()
    assert "-A nova-network-FORWARD -o br100 -j ACCEPT" in lines
    assert not any(
        "10.0.0.0/24" in line or "--dport 67" in line for line in lines
    )


def test_floating_forward_rules_are_novas():
    assert hr.floating_forward_rules("10.10.10.10", "10.0.0.1", "eth0") == [
        ("float-snat", "-s 10.0.0.1 -j SNAT --to 10.10.10.10 -d 10.0.0.1"),
        ("float-snat", "-s 10.0.0.1 -j SNAT --to 10.10.10.10 -o eth0"),
        ("PREROUTING", "-d 10.10.10.10 -j DNAT --to 10.0.0.1"),
        ("OUTPUT", "-d 10.10.10.10 -j DNAT --to 10.0.0.1"),
        (
            "POSTROUTING",
            "-s 10.0.0.1 -m conntrack --ctstate DNAT "
            "-j SNAT --to-source 10.10.10.10",
        ),
    ]
    assert hr.floating_forward_rules("10.10.10.10", "10.0.0.1", None)[0] == (
        "float-snat",
        "-s 10.0.0.1 -j SNAT --to 10.10.10.10",
    )


def test_floating_in_ruleset_public_interface_wins():
    rs = hr.host_ruleset([network()], [floating(interface="eth9")], NOVA_TEST)
    snat = rs.tables["nat"].chain("nova-network-float-snat").rules
    assert snat == (
        "-s 10.0.0.1 -j SNAT --to 10.10.10.10 -d 10.0.0.1",
        "-s 10.0.0.1 -j SNAT --to 10.10.10.10 -o eth1",
    )
    # 4 rules per floating IP in nat besides float-snat's 2 (nova: 4 lines
    # matching the address)
    matching = [line for line in rs.lines() if "10.10.10.10" in line]
    assert len(matching) == 5


def test_unassociated_floating_has_no_rules_and_order_is_stable():
    a = floating("10.10.10.20", "10.0.0.2")
    b = floating("10.10.10.3", "10.0.0.3")
    c = floating("10.10.10.4", None)
    rs1 = hr.host_ruleset([network()], [a, b, c], NOVA_TEST)
    rs2 = hr.host_ruleset([network()], [c, b, a], NOVA_TEST)
    assert rs1 == rs2
    pre = rs1.tables["nat"].chain("nova-network-PREROUTING").rules
    assert [r.split()[1] for r in pre[1:]] == ["10.10.10.3", "10.10.10.20"]
    assert not any("10.10.10.4" in line for line in rs1.lines())


@pytest.mark.parametrize(
    "settings",
    [
        {"public_interface": "eth0 -j ACCEPT"},
        {"public_interface": "eth0\n-A INPUT"},
        {"public_interface": "a" * 16},
        {"routing_source_ip": "1.2.3.4 -j ACCEPT"},
        {"routing_source_ip": "::1"},
        {"metadata_host": "1.2.3.4\n"},
        {"metadata_port": 0},
        {"metadata_port": 70000},
        {"dmz_cidr": ("10.0.0.0/24 -j DROP",)},
        {"dmz_cidr": ("10.0.0.1",)},
        {"forward_bridge_interface": ("eth0;x",)},
        {"iptables_drop_action": "DROP -j ACCEPT"},
        {"wrap_prefix": "nova network"},
    ],
)
def test_injection_attempts_in_settings_are_rejected(settings):
    with pytest.raises(exception.InvalidInput):
        hr.HostRulesSettings(**settings)


@pytest.mark.parametrize(
    ("address", "fixed", "interface"),
    [
        ("10.10.10.10 -j ACCEPT", "10.0.0.1", "eth0"),
        ("10.10.10.10", "10.0.0.1\n-A INPUT -j DROP", "eth0"),
        ("10.10.10.10", "10.0.0.1", "eth0 -j DROP"),
    ],
)
def test_injection_attempts_in_data_are_rejected(address, fixed, interface):
    with pytest.raises(exception.InvalidInput):
        hr.floating_forward_rules(address, fixed, interface)


def test_bad_bridge_name_rejected():
    with pytest.raises(exception.InvalidInput):
        hr.host_ruleset([network(bridge="br0 -j DROP")], [], NOVA_TEST)
