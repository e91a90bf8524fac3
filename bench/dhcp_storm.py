"""DHCP storm benchmark (prints figures, asserts nothing; root only).

    .venv/bin/python bench/dhcp_storm.py [--hosts 10000] [--new 1000]

Builds a "host" namespace with bridge br0 (10.240.0.0/16) and a "cli"
namespace on the same L2 segment, a SQLite database with ``--hosts``
allocated instances, and runs the real DHCP reconciler + daemon loop
(real dnsmasq, sh fast-path hook, journal ingest) in the host namespace.
Figures:

1. time for ``--new`` allocations (committed one by one) to become DHCP
   ready (host_state "dhcp" reaches the last generation), dnsmasq
   reloads/restarts during that storm;
2. longest window during that storm in which an existing client's
   DISCOVER got no OFFER (a raw-socket prober fires one every 5 ms);
3. DORA handshakes per second by a raw-socket client with many MACs,
   and the rate at which all their ``add`` events reached the database.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import netaddr

from flatnet.db import api as db_api
from flatnet.ipam import network_layout
from flatnet.linux.dhcp_release import DhcpRelease
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.plan import dnsmasq as plan
from flatnet.service import daemon, dhcp

SUBNET = "10.240.0.0/16"
SERVER = "10.240.0.1"


# --- a minimal raw DHCP client (AF_PACKET) ------------------------------
def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def dhcp_frame(
    src_mac: bytes, xid: int, kind: int, requested: bytes | None = None
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
        opts += bytes([54, 4]) + socket.inet_aton(SERVER)
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
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\xff" * 6 + src_mac + b"\x08\x00" + ip + udp


def parse_reply(frame: bytes) -> tuple[int, int, bytes] | None:
    """(xid, message type, yiaddr) of a DHCP reply frame, else None."""
    if len(frame) < 282 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    udp = 14 + ihl
    if struct.unpack("!H", frame[udp + 2 : udp + 4])[0] != 68:
        return None
    bootp = udp + 8
    xid = struct.unpack("!I", frame[bootp + 4 : bootp + 8])[0]
    yiaddr = frame[bootp + 16 : bootp + 20]
    i = bootp + 240
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
    sock.bind((dev, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    return sock


def client_probe(dev: str, mac: str, seconds: float) -> dict[str, float]:
    """DISCOVER every 5 ms for ``seconds``; longest gap between OFFERs."""
    sock = raw_socket(dev)
    sock.settimeout(0.001)
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
        try:
            reply = parse_reply(sock.recv(2048))
        except TimeoutError:
            continue
        if reply and reply[0] == xid and reply[1] == 2:
            now = time.monotonic()
            worst = max(worst, now - last_offer)
            last_offer = now
            offers += 1
    worst = max(worst, time.monotonic() - last_offer)
    return {"sent": sent, "offers": offers, "max_gap_ms": worst * 1000}


def client_dora(
    dev: str, macs: list[str], window: int, limit: float = 120.0
) -> dict[str, float]:
    """DORA for every MAC, ``window`` handshakes in flight (gives up
    after ``limit`` seconds)."""
    sock = raw_socket(dev)
    sock.settimeout(0.05)
    pending: dict[int, tuple[bytes, float, int]] = {}
    todo = list(macs)
    done = retries = 0
    start = time.monotonic()
    while (todo or pending) and time.monotonic() - start < limit:
        while todo and len(pending) < window:
            src = bytes.fromhex(todo.pop().replace(":", ""))
            xid = random.getrandbits(31)
            pending[xid] = (src, time.monotonic(), 1)
            sock.send(dhcp_frame(src, xid, 1))
        try:
            reply = parse_reply(sock.recv(2048))
        except TimeoutError:
            reply = None
        now = time.monotonic()
        if reply and reply[0] in pending:
            xid, kind, yiaddr = reply
            src = pending[xid][0]
            if kind == 2:
                pending[xid] = (src, now, 3)
                sock.send(dhcp_frame(src, xid, 3, yiaddr))
            elif kind == 5:
                del pending[xid]
                done += 1
        for xid, (src, sent, _state) in list(pending.items()):
            if now - sent > 1.0:  # lost: start over
                retries += 1
                pending[xid] = (src, now, 1)
                sock.send(dhcp_frame(src, xid, 1))
    elapsed = time.monotonic() - start
    return {
        "handshakes": done,
        "seconds": elapsed,
        "per_second": done / elapsed,
        "retries": retries,
    }


# --- server side (runs inside the host namespace) ------------------------
def _sh(*argv: str, ns: str | None = None) -> None:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    subprocess.run(full, check=True, capture_output=True)


def setup_namespaces(host: str, cli: str) -> None:
    for ns in (host, cli):
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "set", "lo", "up", ns=ns)
    _sh("ip", "link", "add", "br0", "type", "bridge", ns=host)
    _sh("ip", "addr", "add", f"{SERVER}/16", "dev", "br0", ns=host)
    _sh("ip", "link", "set", "br0", "up", ns=host)
    _sh(
        "ip",
        "link",
        "add",
        "v0",
        "type",
        "veth",
        "peer",
        "name",
        "c0",
        "netns",
        cli,
        ns=host,
    )
    _sh("ip", "link", "set", "v0", "master", "br0", "up", ns=host)
    _sh("ip", "link", "set", "c0", "up", ns=cli)


def teardown_namespaces(*names: str) -> None:
    """Kill every process left in ``names`` and delete the namespaces."""
    for ns in names:
        pids = subprocess.run(
            ["ip", "netns", "pids", ns],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def mac_of(n: int) -> str:
    return f"fa:16:3e:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"


def run_client(cli: str, mode: str, **kw: object) -> subprocess.Popen[str]:
    argv = [
        "ip",
        "netns",
        "exec",
        cli,
        sys.executable,
        __file__,
        "--client",
        mode,
        "--client-args",
        json.dumps(kw),
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def server(args: argparse.Namespace) -> None:  # noqa: PLR0915

    tmp = pathlib.Path(args.state)
    db = db_api.Database(f"sqlite:///{tmp}/flatnet.sqlite")
    db_api.sync(db)
    net = db_api.network_create(
        db, network_layout(SUBNET), label="bench", bridge="br0"
    )
    t0 = time.monotonic()
    for n in range(args.hosts):
        spec = db_api.InstanceSpec(hostname=f"h{n}", display_name=f"h{n}")
        db_api.instance_create_allocated(
            db,
            spec,
            [db_api.VifRequest(network_id=net.id, mac=netaddr.EUI(mac_of(n)))],
        )
    print(
        f"preload: {args.hosts} hosts in DB in {time.monotonic() - t0:.1f} s"
    )
    settings = plan.DhcpSettings(
        networks_path=str(tmp / "networks"),
        dhcpbridge=str(
            pathlib.Path(sys.executable).parent / "flatnet-dhcpbridge"
        ),
        dhcpbridge_flagfile=(str(tmp / "flatnet.conf"),),
        dhcp_hostsdir=not args.no_hostsdir,
        dnsmasq_config_file=args.dnsmasq_conf or "",
    )
    rec = dhcp.DhcpReconciler(
        db, "bench", settings, DnsmasqProcess, release=DhcpRelease()
    )
    loop = daemon.Daemon(db, "bench", [rec])
    rec.prepare()
    t0 = time.monotonic()
    loop.run_once()
    print(
        f"dnsmasq start with {args.hosts} hosts: "
        f"{time.monotonic() - t0:.2f} s (incl. init hook)"
    )
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    state = rec.state(net.id)
    assert state is not None
    base = (state.reloads, state.starts)

    probe = run_client(args.cli, "probe", mac=mac_of(0), seconds=args.probe)
    time.sleep(0.5)
    t0 = time.monotonic()

    for n in range(args.hosts, args.hosts + args.new):
        spec = db_api.InstanceSpec(hostname=f"h{n}", display_name=f"h{n}")
        db_api.instance_create_allocated(
            db,
            spec,
            [db_api.VifRequest(network_id=net.id, mac=netaddr.EUI(mac_of(n)))],
        )
    committed = time.monotonic() - t0
    last = db_api.network_generations(db)[net.id]
    while db_api.host_state_get(db, "bench", net.id, "dhcp") < last:
        time.sleep(0.005)
    ready = time.monotonic() - t0
    out, _ = probe.communicate()
    gap = json.loads(out)
    print(
        f"storm: {args.new} allocations committed in {committed:.2f} s, "
        f"all DHCP-ready after {ready:.2f} s"
    )
    print(
        f"storm: dnsmasq reloads {state.reloads - base[0]}, restarts "
        f"{state.starts - base[1]} per {args.new} allocations"
    )
    print(
        f"storm: existing client max DISCOVER->OFFER gap "
        f"{gap['max_gap_ms']:.1f} ms ({gap['offers']}/{gap['sent']} "
        f"offers, one DISCOVER every 5 ms)"
    )

    count = min(args.dora, args.hosts)
    before = len(db_api.leases(db, net.id))
    t0 = time.monotonic()
    dora = run_client(
        args.cli,
        "dora",
        macs=[mac_of(n) for n in range(1, count + 1)],
        window=args.window,
    )
    result = json.loads(dora.communicate()[0])
    while len(db_api.leases(db, net.id)) < before + result["handshakes"]:
        if time.monotonic() - t0 > 300:
            break
        time.sleep(0.01)
    recorded = time.monotonic() - t0
    print(
        f"dora: {result['handshakes']} handshakes in "
        f"{result['seconds']:.2f} s = {result['per_second']:.0f}/s "
        f"(retries {result['retries']}, window {args.window})"
    )
    leased = len(db_api.leases(db, net.id)) - before
    print(
        f"dora: {leased} add events in the DB after {recorded:.2f} s = "
        f"{leased / recorded:.0f}/s end to end"
    )
    stop.set()
    thread.join()
    pid = rec._procs[net.id].pid()  # noqa: SLF001 - bench teardown
    if pid:
        os.kill(pid, 9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--dora", type=int, default=3000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--probe", type=float, default=8.0)
    parser.add_argument("--no-hostsdir", action="store_true")
    parser.add_argument(
        "--dnsmasq-conf", help="extra dnsmasq --conf-file (e.g. no-ping)"
    )
    parser.add_argument("--client")
    parser.add_argument("--client-args")
    parser.add_argument("--server", action="store_true")
    parser.add_argument("--state")
    parser.add_argument("--cli")
    args = parser.parse_args()
    if args.client:
        kw = json.loads(args.client_args)
        fn = client_probe if args.client == "probe" else client_dora
        print(json.dumps(fn("c0", **kw)))
        return
    if args.server:
        server(args)
        return
    suffix = str(os.getpid())
    host, cli = f"fnbh{suffix}", f"fnbc{suffix}"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fnbench"))
    tmp.chmod(0o755)
    (tmp / "flatnet.conf").write_text(
        f"[DEFAULT]\nnetworks_path = {tmp}/networks\n"
        f"[database]\nconnection = sqlite:///{tmp}/flatnet.sqlite\n"
    )
    try:
        setup_namespaces(host, cli)
        argv = [a for a in sys.argv[1:]]
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                host,
                sys.executable,
                __file__,
                "--server",
                "--state",
                str(tmp),
                "--cli",
                cli,
                *argv,
            ],
            check=True,
        )
    finally:
        teardown_namespaces(host, cli)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
