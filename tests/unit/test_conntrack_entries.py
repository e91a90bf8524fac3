"""flatnet.linux.conntrack's batch cut, pure part: ``conntrack -L``
lines parsed, filters matched against them, exact delete lines."""

from __future__ import annotations

import netaddr

from flatnet.linux.conntrack import FlowFilter, match_entries, parse_entries

LISTED = """\
tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=10.0.0.9 sport=40000 \
dport=22 src=10.0.0.9 dst=10.0.0.5 sport=22 dport=40000 [ASSURED] mark=0 \
use=1
udp      17 29 src=10.0.0.3 dst=10.0.0.4 sport=5353 dport=53 [UNREPLIED] \
src=10.0.0.4 dst=10.0.0.3 sport=53 dport=5353 mark=0 zone=7 use=1
icmp     1 29 src=10.0.0.2 dst=10.0.0.9 type=8 code=0 id=77 src=10.0.0.9 \
dst=10.0.0.2 type=0 code=0 id=77 mark=0 use=1
unknown  2 599 src=10.0.0.1 dst=224.0.0.1 src=224.0.0.1 dst=10.0.0.1 use=1
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
"""


def test_entries_are_parsed_with_both_directions_ports_and_zone():
    tcp, udp, icmp = parse_entries(LISTED)
    assert (tcp.protocol, tcp.sport) == ("tcp", 40000)
    assert (tcp.dport, tcp.zone) == (22, 0)
    assert tcp.src == int(netaddr.IPAddress("10.0.0.5"))
    assert tcp.reply_src == int(netaddr.IPAddress("10.0.0.9"))
    assert udp.zone == 7
    assert (icmp.sport, icmp.dport) == (None, None)
    assert tcp.delete_line() == (
        "-D -s 10.0.0.5 -d 10.0.0.9 -p tcp --sport 40000 --dport 22"
    )
    assert udp.delete_line().endswith("-w 7")
    assert icmp.delete_line() == "-D -s 10.0.0.2 -d 10.0.0.9 -p icmp"


def test_filters_match_as_conntrack_D_would():
    tcp, udp, icmp = parse_entries(LISTED)
    entries = [tcp, udp, icmp]

    def chosen(**kw: object) -> list[str]:
        found = match_entries([FlowFilter(**kw)], entries)  # type: ignore[arg-type]
        return [e.protocol for e in found]

    net = netaddr.IPNetwork("10.0.0.0/30")
    assert chosen(orig_dst="10.0.0.9") == ["tcp", "icmp"]
    assert chosen(orig_dst="10.0.0.9", protocol="tcp", dport=22) == ["tcp"]
    assert chosen(orig_dst="10.0.0.9", protocol="tcp", dport=23) == []
    assert chosen(orig_src=net, orig_dst="10.0.0.9") == ["icmp"]
    assert chosen(orig_src="10.0.0.3") == ["udp"]
    assert chosen(reply_src="10.0.0.9") == ["tcp", "icmp"]
    assert chosen(orig_src="10.0.0.3", zone=6) == []
    both = [FlowFilter(orig_src="10.0.0.3"), FlowFilter(orig_dst="10.0.0.9")]
    assert len(match_entries(both, entries)) == 3
