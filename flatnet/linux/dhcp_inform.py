"""EXECUTOR: readiness of a DHCP shard by DHCPINFORM (RFC 2131 3.4).

A shard's dnsmasq runs with ``--port=0`` (no DNS), so the DNS probe of a
single dnsmasq cannot show it read a batch. Instead a DHCPINFORM is sent
from inside the shard's namespace, from a socket bound to its ``eth0``
and its own address, to ``<shard address>:67``, with ``ciaddr`` a host
address of the network and ``chaddr`` a MAC of the batch. The shard
ignores unknown clients (``--dhcp-ignore=tag:!known``), so an answer
(DHCPACK) proves that the MAC's dhcp-host line is loaded. dnsmasq sends
its reply to an INFORM's source address and port (dnsmasq dhcp.c
``dhcp_packet``: "If we're replying to a DHCPINFORM, trust the source
address always"), so the probe socket receives it.
"""

from __future__ import annotations

import secrets
import socket
import struct
import time

import netaddr

from flatnet import exception
from flatnet.linux import netlink
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.plan.dnsmasq import DnsmasqPaths

DHCP_SERVER_PORT = 67
_MAGIC = b"\x63\x82\x53\x63"
_INFORM = 8
_ACK = 5


def inform_packet(xid: int, ciaddr: str, mac: netaddr.EUI) -> bytes:
    """A BOOTREQUEST carrying DHCPINFORM (option 53 = 8)."""
    chaddr = bytes(mac.packed).ljust(16, b"\0")
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s",
        1,  # BOOTREQUEST
        1,  # Ethernet
        6,
        0,
        xid,
        0,
        0,
        socket.inet_aton(ciaddr),
        b"\0" * 4,
        b"\0" * 4,
        b"\0" * 4,
        chaddr,
    )
    options = _MAGIC + bytes([53, 1, _INFORM, 255])
    return header + b"\0" * 192 + options


def is_ack(reply: bytes, xid: int) -> bool:
    """True if ``reply`` is a BOOTREPLY for ``xid`` carrying DHCPACK."""
    if len(reply) < 240 or reply[0] != 2:
        return False
    if struct.unpack("!I", reply[4:8])[0] != xid or reply[236:240] != _MAGIC:
        return False
    i = 240
    while i + 1 < len(reply) and reply[i] != 255:
        if reply[i] == 0:
            i += 1
            continue
        if reply[i] == 53 and i + 2 < len(reply):
            return reply[i + 2] == _ACK
        i += 2 + reply[i + 1]
    return False


def _socket(netns: str, ifname: str, address: str) -> socket.socket:
    with netlink.entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode()
        )
        sock.bind((address, 0))
    except OSError:
        sock.close()
        raise
    return sock


def wait_informed(
    netns: str,
    address: str,
    ciaddr: str,
    mac: netaddr.EUI,
    timeout: float = 5.0,
    ifname: str = "eth0",
) -> bool:
    """True once the shard at ``address`` (in ``netns``) answers a
    DHCPINFORM for ``mac``; False after ``timeout``. Raises
    DnsmasqError if the probe socket cannot be made."""
    try:
        sock = _socket(netns, ifname, address)
    except OSError as exc:
        raise exception.DnsmasqError(
            bridge=netns, reason=f"DHCPINFORM probe: {exc}"
        ) from exc
    deadline = time.monotonic() + timeout
    with sock:
        while (left := deadline - time.monotonic()) > 0:
            xid = secrets.randbits(32)
            sock.settimeout(min(left, 0.05))
            try:
                sock.sendto(
                    inform_packet(xid, ciaddr, mac),
                    (address, DHCP_SERVER_PORT),
                )
                while True:
                    if is_ack(sock.recv(1500), xid):
                        return True
            except (TimeoutError, ConnectionRefusedError):
                continue
    return False


class ShardProcess(DnsmasqProcess):
    """A shard's dnsmasq: started and proven in its namespace; "served"
    means it answered a DHCPINFORM for :attr:`probe` (``(address,
    mac)`` of a host it must know), or, with no host yet, that it runs."""

    def __init__(
        self,
        bridge: str,
        paths: DnsmasqPaths,
        netns: str,
        ifname: str = "eth0",
    ) -> None:
        super().__init__(bridge, paths, netns=netns)
        self.netns = netns
        self.ifname = ifname
        self.probe: tuple[str, netaddr.EUI] | None = None

    def wait_served(self, listen: str, timeout: float = 5.0) -> bool:
        if self.probe is None:
            return self.pid() is not None
        ciaddr, mac = self.probe
        return wait_informed(
            self.netns, listen, ciaddr, mac, timeout, self.ifname
        )
