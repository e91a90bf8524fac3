"""A fast raw-socket DHCP load client for the benchmarks (root only).

Frames are pre-built: every MAC's address is known from the hosts file,
so DISCOVER and REQUEST (with ``requested address`` and ``server id``)
are rendered once, before the clock starts. The receive path reads only
fixed offsets (dnsmasq always puts option 53 first). The socket ignores
our own outgoing frames (PACKET_IGNORE_OUTGOING) and is drained
non-blocking, so one Python process can drive several thousand
handshakes per second; the client reports its own CPU time so the
caller can tell whether the client or the server was the limit.
"""

from __future__ import annotations

import random
import resource
import select
import socket
import struct
import time
from collections.abc import Sequence

SOL_PACKET = 263  # linux/socket.h
PACKET_IGNORE_OUTGOING = 23  # linux/if_packet.h, Linux >= 4.20
_BOOTP = 14 + 20 + 8  # Ethernet + IPv4 (no options) + UDP


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def dhcp_frame(
    src_mac: bytes,
    xid: int,
    kind: int,
    requested: bytes | None = None,
    server: bytes | None = None,
) -> bytes:
    """Broadcast DISCOVER (1) or REQUEST (3) with the broadcast flag."""
    bootp = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1,
        1,
        6,
        0,
        xid,
        0,
        0x8000,
        b"\0" * 4,
        b"\0" * 4,
        b"\0" * 4,
        b"\0" * 4,
        src_mac + b"\0" * 10,
        b"",
        b"",
    )
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, kind])
    if requested is not None:
        opts += bytes([50, 4]) + requested
    if server is not None:
        opts += bytes([54, 4]) + server
    opts += bytes([55, 3, 1, 3, 6, 255])
    payload = bootp + opts
    udp = struct.pack("!HHHH", 68, 67, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        b"\0" * 4,
        b"\xff" * 4,
    )
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return b"\xff" * 6 + src_mac + b"\x08\x00" + ip + udp


def parse_reply(frame: bytes) -> tuple[int, int, bytes] | None:
    """(xid, message type, yiaddr) of a DHCP reply frame, else None."""
    if len(frame) < 282 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    udp = 14 + ihl
    if frame[udp + 2] != 0 or frame[udp + 3] != 68:
        return None
    bootp = udp + 8
    xid = int.from_bytes(frame[bootp + 4 : bootp + 8], "big")
    yiaddr = frame[bootp + 16 : bootp + 20]
    i = bootp + 240
    if frame[i] == 53:  # dnsmasq: message type is the first option
        return xid, frame[i + 2], yiaddr
    while i + 1 < len(frame) and frame[i] != 255:
        if frame[i] == 0:
            i += 1
            continue
        if frame[i] == 53:
            return xid, frame[i + 2], yiaddr
        i += 2 + frame[i + 1]
    return None


def raw_socket(dev: str) -> socket.socket:
    sock = socket.socket(
        socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)
    )
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 20)
    sock.bind((dev, 0))
    return sock


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _drain(
    sock: socket.socket,
    base: int,
    pending: dict[int, float],
    frames: list[tuple[bytes, bytes]],
) -> tuple[int, int]:
    """Handle every queued reply: OFFER -> send REQUEST, ACK -> done.
    Returns (offers, acks)."""
    offers = acks = 0
    while True:
        try:
            frame = sock.recv(2048)
        except BlockingIOError:
            return offers, acks
        reply = parse_reply(frame)
        if reply is None or reply[0] - base not in pending:
            continue
        n = reply[0] - base
        if reply[1] == 2:
            offers += 1
            sock.send(frames[n][1])
        elif reply[1] == 5:
            del pending[n]
            acks += 1


def dora(
    dev: str,
    hosts: Sequence[Sequence[str]],
    server: str,
    window: int,
    limit: float = 120.0,
    retry: float = 1.0,
) -> dict[str, float]:
    """DORA for every ``(mac, ip)`` or ``(mac, ip, server)`` (the
    REQUEST's server identifier, default ``server``), ``window``
    handshakes in flight.

    A handshake lost for ``retry`` seconds starts over (counted in
    ``retries``). Gives up after ``limit`` seconds.
    """
    sid = socket.inet_aton(server)
    base = random.getrandbits(20) << 11
    frames = []
    for n, (mac, ip, *own) in enumerate(hosts):
        src = bytes.fromhex(mac.replace(":", ""))
        xid = base + n
        to = socket.inet_aton(own[0]) if own else sid  # e.g. its shard
        frames.append(
            (
                dhcp_frame(src, xid, 1),
                dhcp_frame(src, xid, 3, socket.inet_aton(ip), to),
            )
        )
    sock = raw_socket(dev)
    sock.setblocking(False)
    pending: dict[int, float] = {}  # index -> last send time
    todo = list(range(len(frames) - 1, -1, -1))
    done = retries = offers = 0
    cpu0, start = _cpu(), time.monotonic()
    next_check = start + retry
    while (todo or pending) and (now := time.monotonic()) - start < limit:
        while todo and len(pending) < window:
            n = todo.pop()
            pending[n] = now
            sock.send(frames[n][0])
        select.select([sock], [], [], 0.02)
        got, acked = _drain(sock, base, pending, frames)
        offers += got
        done += acked
        now = time.monotonic()
        if now >= next_check:
            next_check = now + 0.1
            for n, sent in list(pending.items()):
                if now - sent > retry:
                    retries += 1
                    pending[n] = now
                    sock.send(frames[n][0])
    elapsed = time.monotonic() - start
    return {
        "start": start,  # CLOCK_MONOTONIC: the first DISCOVER, any netns
        "handshakes": done,
        "offers": offers,
        "seconds": elapsed,
        "per_second": done / elapsed if elapsed else 0.0,
        "retries": retries,
        "client_cpu": _cpu() - cpu0,
    }


def probe(dev: str, mac: str, seconds: float) -> dict[str, float]:
    """DISCOVER every 5 ms for ``seconds``; longest gap between OFFERs
    and the slowest single DISCOVER->OFFER."""
    sock = raw_socket(dev)
    sock.setblocking(False)
    src = bytes.fromhex(mac.replace(":", ""))
    xid = random.getrandbits(31)
    frame = dhcp_frame(src, xid, 1)
    end = time.monotonic() + seconds
    last_offer = time.monotonic()
    worst = 0.0
    sent = offers = 0
    next_send = 0.0
    while (now := time.monotonic()) < end:
        if now >= next_send:
            sock.send(frame)
            sent += 1
            next_send = now + 0.005
        select.select([sock], [], [], max(0.0, next_send - now))
        while True:
            try:
                reply = parse_reply(sock.recv(2048))
            except BlockingIOError:
                break
            if reply and reply[0] == xid and reply[1] == 2:
                now = time.monotonic()
                worst = max(worst, now - last_offer)
                last_offer = now
                offers += 1
    worst = max(worst, time.monotonic() - last_offer)
    return {"sent": sent, "offers": offers, "max_gap_ms": worst * 1000}
