"""flatnet.mac: generation and validation of VIF MAC addresses."""

from __future__ import annotations

import random
import re

import netaddr
import pytest

from flatnet import exception, mac


def test_generated_macs_use_the_openstack_prefix_in_lower_case() -> None:
    rng = random.Random(42)
    for _ in range(200):
        text = mac.format_mac(mac.generate_mac(rng))
        assert re.fullmatch(r"fa:16:3e(:[0-9a-f]{2}){3}", text), text


def test_generation_is_driven_by_the_random_source() -> None:
    a = [mac.generate_mac(random.Random(7)) for _ in range(3)]
    b = [mac.generate_mac(random.Random(7)) for _ in range(3)]
    assert a == b
    assert len({mac.generate_mac(random.Random(s)) for s in range(50)}) > 45


def test_generated_mac_is_unicast_and_parses_back() -> None:
    value = mac.generate_mac(random.Random(1))
    assert mac.parse_mac(mac.format_mac(value)) == value


@pytest.mark.parametrize(
    "text", ["fa:16:3e:00:00:01", "CA:FE:DE:AD:BE:EF", "02-00-00-00-00-01"]
)
def test_valid_unicast_macs_parse(text) -> None:
    assert mac.parse_mac(text) == netaddr.EUI(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ff:ff:ff:ff:ff:ff", "broadcast"),
        ("01:00:5e:00:00:01", "multicast"),
        ("33:33:00:00:00:01", "multicast"),
        ("00:00:00:00:00:00", "all zeros"),
        ("fa:16:3e:00:00", "six hex"),
        ("fa:16:3e:00:00:01\n", "six hex"),
        ("fa:16:3e:00:00:0g", "six hex"),
        ("fa163e000001", "six hex"),
        ("", "six hex"),
        ("fa:16:3e:00:00:01,x", "six hex"),
    ],
)
def test_bad_macs_are_rejected_with_a_reason(text, reason) -> None:
    with pytest.raises(exception.InvalidMacAddress, match=reason):
        mac.parse_mac(text)
