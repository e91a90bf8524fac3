"""Keeper keys of DHCP shards never collide with network ids."""

from __future__ import annotations

from flatnet.service.dhcp_shards import keeper_key, network_of


def test_keys_are_negative_and_map_back() -> None:
    keys = {keeper_key(n, k) for n in (1, 2, 300) for k in range(40)}
    assert len(keys) == 3 * 40
    assert all(key < 0 for key in keys)
    assert network_of(keeper_key(300, 39)) == 300
    assert network_of(keeper_key(1, 0)) == 1
    assert network_of(5) is None  # a network's own key
