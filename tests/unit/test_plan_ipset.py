"""plan/ipset: names within the kernel limit, save parsing, restore
payloads (create, small update adds-before-deletes, swap, prune)."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.plan import ipset

SAVE = """create nova-compute-sg-1 hash:net family inet hashsize 1024 \
maxelem 65536 bucketsize 12 initval 0x41d22c9b
add nova-compute-sg-1 10.0.0.5
add nova-compute-sg-1 10.1.0.0/16
create foreign hash:ip family inet hashsize 1024 maxelem 65536
add foreign 1.2.3.4
"""


def spec(*members, name="nova-compute-sg-1"):
    return ipset.IpSetSpec(name, frozenset(members))


def test_names_fit_ipset_with_room_for_the_temporary_twin():
    assert ipset.validate_set_name("a" * 29) == "a" * 29
    for bad in ("a" * 30, "bad name", "x;y", "", "ends-t"):
        with pytest.raises(exception.InvalidInput):
            ipset.validate_set_name(bad)


def test_members_in_the_saved_spelling():
    assert ipset.set_members(
        [
            netaddr.IPAddress("10.0.0.5"),
            netaddr.IPNetwork("10.1.0.0/16"),
            netaddr.IPNetwork("10.2.0.7/32"),
        ]
    ) == {"10.0.0.5", "10.1.0.0/16", "10.2.0.7"}


def test_parse_save():
    live = ipset.parse_save(SAVE)
    assert live["nova-compute-sg-1"] == ipset.LiveSet(
        "nova-compute-sg-1",
        "hash:net",
        "inet",
        frozenset({"10.0.0.5", "10.1.0.0/16"}),
    )
    assert live["foreign"].set_type == "hash:ip"


def test_plan_create_update_swap_and_prune():
    live = {k: v for k, v in ipset.parse_save(SAVE).items() if k != "foreign"}
    assert ipset.plan_ensure(live, [spec("10.0.0.5", "10.1.0.0/16")]).empty
    update = ipset.plan_ensure(live, [spec("10.0.0.5", "10.0.0.6")])
    assert update.lines == (
        "add nova-compute-sg-1 10.0.0.6",
        "del nova-compute-sg-1 10.1.0.0/16",
    )
    many = [f"10.3.0.{n}" for n in range(1, 40)]
    swap = ipset.plan_ensure(live, [spec(*many)])
    assert swap.swapped == ("nova-compute-sg-1",)
    assert (
        swap.lines[0]
        == "create nova-compute-sg-1-t hash:net family inet maxelem 65536"
    )
    assert swap.lines[-2:] == (
        "swap nova-compute-sg-1-t nova-compute-sg-1",
        "destroy nova-compute-sg-1-t",
    )
    assert swap.set_of_line(2) == "nova-compute-sg-1"
    new = ipset.plan_ensure({}, [spec("10.0.0.1", name="nova-compute-sg-2")])
    assert new.created == ("nova-compute-sg-2",)
    prune = ipset.plan_prune(live, [spec(name="nova-compute-sg-2")])
    assert prune.lines == ("destroy nova-compute-sg-1",)


def test_big_sets_get_room():
    big = spec(
        *(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(70000))
    )
    assert big.maxelem == 131072
