"""Security-group rule validation (shared by the planner and the CLI):
nova's ``SecurityGroupBase._new_ingress_rule`` checks and defaults, plus
clear one-line errors for what nova let through or failed on later."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.plan.firewall_model import (
    HostFirewall,
    SecurityGroupRule,
    group_members,
    new_rule,
    parse_cidr,
    parse_port_range,
)
from tests.firewall_data import group, instance, rule


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("gre", "1:2"), "protocol must be tcp, udp or icmp, not 'gre'"),
        (("tcp", "0:80"), "tcp ports are 1-65535, not 0"),
        (("udp", "70000"), "udp ports are 1-65535, not 70000"),
        (("tcp", "90:80"), "port range 90:80 is reversed (from > to)"),
        (("icmp", "256:-1"), "icmp type must be -1..255, not 256"),
        (("icmp", "-2"), "icmp type must be -1..255, not -2"),
        (("icmp", "8:300"), "icmp code must be -1..255, not 300"),
        (("icmp", "-1:0"), "icmp code 0 needs an icmp type"),
        ((None, "80"), "ports need a protocol"),
        (("tcp", None), "tcp needs a port range"),
        (("tcp", "eighty"), "port range 'eighty' is not N or N:M"),
        (("tcp", "80-90"), "port range '80-90' is not N or N:M"),
    ],
)
def test_bad_rules_are_one_line_errors(args, message):
    with pytest.raises(exception.InvalidInput) as err:
        new_rule(*args)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("Invalid input: security group rule:")


@pytest.mark.parametrize(
    ("cidr", "reason"),
    [
        ("10.0.0.1/33", "not a CIDR"),
        ("ten/8", "not a CIDR"),
        ("10.0.0.5", "expected a.b.c.d/n"),
        ("10.0.0.1/24", "host bits set (network is 10.0.0.0/24)"),
        ("2001:db8::/64", "only IPv4 is filtered"),
        ("10.0.0.0/8;x", "not a CIDR"),
    ],
)
def test_bad_cidrs_name_the_problem(cidr, reason):
    with pytest.raises(exception.InvalidCidr) as err:
        new_rule("tcp", "22", cidr=cidr)
    assert reason in str(err.value)
    assert cidr in str(err.value)


def test_nova_defaults_for_api_input():
    # nova SecurityGroupBase.parse_cidr: no cidr -> 0.0.0.0/0
    assert new_rule("tcp", "22").cidr == netaddr.IPNetwork("0.0.0.0/0")
    # _new_ingress_rule: a group rule without ports opens everything
    opened = new_rule("TCP", None, source_group=3)
    assert (opened.protocol, opened.from_port, opened.to_port) == (
        "tcp",
        1,
        65535,
    )
    icmp = new_rule("icmp", None, source_group=3)
    assert (icmp.from_port, icmp.to_port) == (-1, -1)
    assert new_rule(None, None, source_group=3).protocol is None
    assert parse_port_range(" 8:0 ") == (8, 0)
    assert parse_port_range("-1") == (-1, -1)
    assert parse_cidr("192.168.0.0/16").prefixlen == 16


def test_a_rule_has_exactly_one_source():
    with pytest.raises(exception.InvalidInput, match="one of them"):
        SecurityGroupRule("tcp", 1, 2)
    with pytest.raises(exception.InvalidInput, match="one of them"):
        SecurityGroupRule(
            "tcp", 1, 2, netaddr.IPNetwork("0.0.0.0/0"), source_group=1
        )
    with pytest.raises(exception.InvalidInput, match="integer"):
        SecurityGroupRule("tcp", True, 2, source_group=1)  # noqa: FBT003


def test_same_rule_has_the_same_key():
    # nova SecurityGroupBase.rule_exists compares these five fields
    assert (
        rule("TCP", "80", "10.0.0.0/8").key
        == rule("tcp", "80:80", "10.0.0.0/8").key
    )
    assert (
        rule("tcp", "80", "10.0.0.0/8").key
        != rule("tcp", "81", "10.0.0.0/8").key
    )


def test_host_checks_names_and_addresses():
    web = group(1, rule("tcp", "80", source=2))
    with pytest.raises(
        exception.InvalidInput, match="unknown security group 2"
    ):
        HostFirewall((instance(1, "10.0.0.2"),), (web,))
    other = group(2)
    with pytest.raises(
        exception.InvalidInput, match="unknown security group 9"
    ):
        HostFirewall((instance(1, "10.0.0.2", groups=(9,)),), (web, other))
    with pytest.raises(exception.InvalidInput, match="given twice"):
        HostFirewall(
            (instance(1, "10.0.0.2"), instance(1, "10.0.0.3")), (web, other)
        )
    with pytest.raises(exception.InvalidInput, match="10.0.0.2 belongs to"):
        HostFirewall(
            (instance(1, "10.0.0.2"), instance(2, "10.0.0.2")), (web, other)
        )
    with pytest.raises(
        exception.InvalidInput, match="duplicate security group"
    ):
        HostFirewall((), (web, group(1)))


def test_group_members_span_every_given_instance():
    members = group_members(
        [
            instance(1, "10.0.0.2", groups=(1, 2)),
            instance(2, "10.0.0.3", groups=(2,)),
        ]
    )
    assert members == {
        1: frozenset({netaddr.IPAddress("10.0.0.2")}),
        2: frozenset(
            {netaddr.IPAddress("10.0.0.2"), netaddr.IPAddress("10.0.0.3")}
        ),
    }
