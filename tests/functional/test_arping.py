"""flatnet.linux.arping: a gratuitous ARP really reaches the segment (a
peer that accepts unsolicited ARP learns our MAC)."""

from __future__ import annotations

import netaddr
import pytest

from flatnet import exception
from flatnet.linux.arping import Arping
from tests.functional import netns

pytestmark = pytest.mark.root


def test_announce_teaches_the_peer_our_mac(make_netns):
    ours, peer = make_netns("ap"), make_netns("aq")
    netns.veth(ours, "pub0", peer, "eth0")
    netns.run(["ip", "addr", "add", "172.31.80.1/24", "dev", "pub0"], ours)
    netns.run(["ip", "addr", "add", "172.31.80.2/24", "dev", "eth0"], peer)
    netns.run(["sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1"], peer)
    floating = netaddr.IPAddress("172.31.80.100")
    netns.run(["ip", "addr", "add", f"{floating}/32", "dev", "pub0"], ours)
    mac = netns.run(["cat", "/sys/class/net/pub0/address"], ours).stdout
    Arping(netns=ours).announce("pub0", floating, 2)
    neigh = netns.run(["ip", "neigh", "show", str(floating)], peer).stdout
    assert mac.strip() in neigh


def test_missing_device_is_a_host_network_error(make_netns):
    ns = make_netns("ap")
    with pytest.raises(exception.HostNetworkError, match="nosuch0"):
        Arping(netns=ns).announce("nosuch0", netaddr.IPAddress("10.0.0.1"), 1)
