"""flatnet.linux.conntrack in a fresh namespace: entries inserted with
``conntrack -I`` are deleted by the filter's fields, and only those."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.linux.conntrack import Conntrack, FlowFilter, delete_argv
from tests.functional import netns

pytestmark = pytest.mark.root


def insert(ns: str, src: str, dst: str, dport: int) -> None:
    netns.run(
        ["conntrack", "-I", "-s", src, "-d", dst, "-p", "tcp",
         "--sport", "40000", "--dport", str(dport),
         "--state", "ESTABLISHED", "-u", "SEEN_REPLY", "-t", "120"],
        netns=ns,
    )  # fmt: skip


def flows(ns: str) -> list[str]:
    out = netns.run(["conntrack", "-L"], netns=ns).stdout
    return sorted(line.split(" src=")[1].split(" ")[0] for line in
                  out.splitlines())  # fmt: skip


def test_delete_selects_by_original_and_reply_direction(make_netns):
    ns = make_netns("ct")
    insert(ns, "10.0.0.5", "10.0.0.9", 22)
    insert(ns, "10.0.0.6", "10.0.0.9", 80)
    insert(ns, "10.0.0.7", "10.0.0.8", 22)
    ct = Conntrack(netns=ns)
    cut = FlowFilter(orig_dst=netaddr.IPAddress("10.0.0.9"), protocol="tcp",
                     dport=22)  # fmt: skip
    assert ct.delete(cut) == 1
    assert flows(ns) == ["10.0.0.6", "10.0.0.7"]
    assert ct.delete(cut) == 0  # nothing left to cut: fine
    # nova's "conntrack -D -r <fixed>": the reply comes from 10.0.0.8
    assert ct.forget_connections(netaddr.IPAddress("10.0.0.8")) == 1
    assert flows(ns) == ["10.0.0.6"]


def test_filters_are_validated_before_anything_runs():
    assert delete_argv(FlowFilter(reply_src="10.0.0.3")) == [
        "conntrack", "-D", "-r", "10.0.0.3",
    ]  # fmt: skip
    for bad in (
        {},  # would delete every entry
        {"orig_src": "10.0.0.1 -D"},
        {"orig_src": "10.0.0.1", "protocol": "tcp;x"},
        {"orig_src": "10.0.0.1", "dport": 22},  # a port needs a protocol
        {"orig_src": "10.0.0.1", "protocol": "udp", "dport": 70000},
    ):
        with pytest.raises((exception.InvalidInput, netaddr.AddrFormatError)):
            FlowFilter(**bad)


def test_missing_namespace_is_a_host_network_error():
    ct = Conntrack(netns=netns.unique_name("gone"))
    with pytest.raises(exception.HostNetworkError, match="conntrack"):
        ct.delete(FlowFilter(orig_src=netaddr.IPAddress("10.0.0.1")))


def test_delete_many_is_one_list_and_one_batch_of_exact_deletes(make_netns):
    """Many filters at once: only the selected entries go (a network
    source, an address gone, a port-narrowed cut), the others stay;
    filters that select nothing cost nothing."""
    ns = make_netns("ctm")
    insert(ns, "10.0.0.5", "10.0.0.9", 22)  # 10.0.0.0/29 -> .9:22: cut
    insert(ns, "10.0.0.6", "10.0.0.9", 80)  # port 80: stays
    insert(ns, "10.0.1.7", "10.0.0.9", 22)  # outside /29: stays
    insert(ns, "10.0.0.3", "10.0.0.4", 53)  # from the address gone: cut
    insert(ns, "10.0.0.2", "10.0.0.3", 53)  # to the address gone: cut
    ct = Conntrack(netns=ns)
    cuts = [
        FlowFilter(orig_src=netaddr.IPNetwork("10.0.0.0/29"),
                   orig_dst="10.0.0.9", protocol="tcp", dport=22),
        FlowFilter(orig_src="10.0.0.3"),
        FlowFilter(orig_dst="10.0.0.3"),
        *(FlowFilter(orig_src=f"10.9.{n // 250}.{n % 250 + 1}",
                     orig_dst="10.0.0.9", protocol="tcp", dport=22)
          for n in range(200)),
    ]  # fmt: skip
    assert len(ct.list()) == 5
    assert ct.delete_many(cuts) == 3
    assert flows(ns) == ["10.0.0.6", "10.0.1.7"]
    assert ct.delete_many(cuts) == 0
    assert ct.delete_many([]) == 0
    # a few filters: one conntrack -D each, same result
    insert(ns, "10.0.0.3", "10.0.0.4", 53)
    insert(ns, "10.0.0.5", "10.0.0.9", 22)
    assert ct.delete_many(cuts[:2]) == 2
    assert flows(ns) == ["10.0.0.6", "10.0.1.7"]
