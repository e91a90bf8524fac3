"""A tiny frame logger for VM tests: what really reached the wire.

    python -m tests.functional.vm_sniff IFACE OUTFILE

Run inside a namespace (``ip netns exec``); writes one JSON object per
frame received on IFACE (frames the namespace sends are skipped) until
SIGTERM: src/dst MAC, ethertype, the 802.1Q tag (from PACKET_AUXDATA:
the kernel strips tags before the socket sees the frame), and for IPv4
the addresses, protocol and UDP/TCP ports, for ARP the opcode and the
sender/target addresses.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
PACKET_OUTGOING = 4


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def decode(frame: bytes, vlan: int | None) -> dict[str, object]:
    ethertype = struct.unpack("!H", frame[12:14])[0]
    info: dict[str, object] = {
        "dst": _mac(frame[0:6]),
        "src": _mac(frame[6:12]),
        "type": f"0x{ethertype:04x}",
        "vlan": vlan,
    }
    body = frame[14:]
    if ethertype == 0x0800 and len(body) >= 20:
        ihl = (body[0] & 0x0F) * 4
        info.update(
            proto=body[9],
            ipsrc=socket.inet_ntoa(body[12:16]),
            ipdst=socket.inet_ntoa(body[16:20]),
        )
        if body[9] in (6, 17) and len(body) >= ihl + 4:
            sport, dport = struct.unpack("!HH", body[ihl : ihl + 4])
            info.update(sport=sport, dport=dport)
    elif ethertype == 0x0806 and len(body) >= 28:
        info.update(
            op=struct.unpack("!H", body[6:8])[0],
            hwsrc=_mac(body[8:14]),
            psrc=socket.inet_ntoa(body[14:18]),
            pdst=socket.inet_ntoa(body[24:28]),
        )
    return info


def _vlan(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancdata:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 20:
            status, _, _, _, _, tci = struct.unpack("IIIHHH", data[:18])
            if status & TP_STATUS_VLAN_VALID:
                return tci & 0x0FFF
    return None


def main(iface: str, path: str) -> None:
    sock = socket.socket(
        socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
    )
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.bind((iface, 0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(path, "a", buffering=1) as out:  # noqa: PTH123
        out.write(json.dumps({"ready": True}) + "\n")
        while True:
            frame, anc, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(64))
            if addr[2] == PACKET_OUTGOING or len(frame) < 14:
                continue
            out.write(json.dumps(decode(frame, _vlan(anc))) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
