"""Metadata service benchmark: crawl latency, throughput, boot-storm crawl.

    .venv/bin/python bench/metadata.py [--instances 1000] [--clients 200]
                                       [--seconds 10]

Starts the real server (``metadata_server.serve``) in its own process,
listening on 127.0.0.1, with an in-memory lookup of ``--instances``
instances whose fixed addresses are loopback addresses 127.1.x.y. The
load generator (this process, asyncio) binds each client to its
instance's address, so the server tells instances apart by TCP source
address exactly as in production. Figures:

1. one cloud-init crawl (28 requests, cloud-init's order), cold (first
   request of the instance does the lookup) and warm, one connection
   per request as cloud-init 22.4 does, and over one keep-alive
   connection;
2. ``--clients`` concurrent keep-alive clients (one instance each)
   requesting crawl paths for ``--seconds``: requests/s, p50/p99;
3. every instance crawls once, all at the same time (a boot storm:
   28 x instances requests, a new connection per request): errors,
   wall time, p99.

The server's CPU time per phase comes from /proc/<pid>/stat, to show
where the time goes. Goals (issue 10): crawl < 50 ms; >= 2,000 req/s
and p99 <= 20 ms at 200 clients; 28,000 requests with zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Coroutine
from typing import Any

CRAWL = [
    "/openstack",
    "/openstack",
    "/openstack/2017-02-22/meta_data.json",
    "/openstack/2017-02-22/user_data",
    "/openstack/2017-02-22/vendor_data.json",
    "/openstack/2017-02-22/vendor_data2.json",
    "/openstack/2017-02-22/network_data.json",
    "/latest/meta-data/",
    "/latest/meta-data/block-device-mapping/",
    "/latest/meta-data/block-device-mapping/ami",
    "/latest/meta-data/block-device-mapping/root",
    "/latest/meta-data/placement/",
    "/latest/meta-data/placement/availability-zone",
    "/latest/meta-data/public-keys/",
    "/latest/meta-data/public-keys/0/openssh-key",
] + [
    f"/latest/meta-data/{leaf}"
    for leaf in (
        "ami-id", "ami-launch-index", "ami-manifest-path", "hostname",
        "instance-action", "instance-id", "instance-type", "local-hostname",
        "local-ipv4", "public-hostname", "public-ipv4", "reservation-id",
        "security-groups",
    )
]  # fmt: skip
assert len(CRAWL) == 28


def address(n: int) -> str:
    """The fixed (source) address of instance n (0-based)."""
    return f"127.1.{n // 250}.{n % 250 + 1}"


# -- the server process -------------------------------------------------
def _serve(port: int, instances: int) -> int:
    from flatnet.plan import metadata as plan  # noqa: PLC0415
    from flatnet.service import metadata_server  # noqa: PLC0415

    table = {}
    for n in range(instances):
        ip = address(n)
        vif = plan.MetadataVif(
            vif_id=f"vif-{n}", mac=f"fa:16:3e:00:{n // 256:02x}:{n % 256:02x}",
            network_id="net-1", address=ip, netmask="255.0.0.0",
            gateway="127.0.0.1", dns=("127.0.0.1",),
        )  # fmt: skip
        table[ip] = plan.InstanceMetadata(
            uuid=f"uuid-{n}", ec2_id=plan.ec2_instance_id(n + 1),
            hostname=f"vm{n}", fixed_ip=ip, reservation_id=f"r-{n:08d}",
            public_keys={"key": "ssh-ed25519 AAAAC3Nza bench"},
            user_data=b"#cloud-config\n", vifs=(vif,),
        )  # fmt: skip
    settings = metadata_server.MetadataSettings(
        listen_host="127.0.0.1",
        listen_port=port,
        max_connections=4096,
        backlog=4096,
    )
    return metadata_server.serve(settings, table.get)


# -- the load generator -------------------------------------------------
class _Proto(asyncio.Protocol):
    """Reads one response at a time (status, closes?) for ``Conn``."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bool]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buf[: end + 2])
        at = head.find(b"Content-Length: ") + 16
        total = end + 4 + int(head[at : head.find(b"\r\n", at)])
        if len(self.buf) < total:
            return
        del self.buf[:total]
        waiter, self.waiter = self.waiter, None
        waiter.set_result((int(head[9:12]), b"Connection: close" in head))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))


class Conn:
    """A minimal keep-alive HTTP/1.1 client bound to a source address."""

    def __init__(self, port: int, source: str) -> None:
        self.port = port
        self.source = source
        self.proto: _Proto | None = None

    async def get(self, path: str, close: bool = False) -> int:
        loop = asyncio.get_running_loop()
        if self.proto is None:
            _, self.proto = await loop.create_connection(
                _Proto, "127.0.0.1", self.port, local_addr=(self.source, 0)
            )
        proto = self.proto
        assert proto.transport is not None
        extra = "Connection: close\r\n" if close else ""
        proto.waiter = loop.create_future()
        proto.transport.write(
            f"GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\n{extra}\r\n"
            .encode()
        )  # fmt: skip
        status, closing = await proto.waiter
        if close or closing:
            await self.close()
        return status

    async def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()
        self.proto = None


async def crawl(port: int, source: str, fresh: bool) -> tuple[float, int]:
    """One 28-request crawl; (seconds, errors)."""
    conn = Conn(port, source)
    errors = 0
    start = time.perf_counter()
    for path in CRAWL:
        try:
            if await conn.get(path, close=fresh) != 200:
                errors += 1
        except (OSError, ValueError):
            errors += 1
            await conn.close()
    await conn.close()
    return time.perf_counter() - start, errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def crawl_latency(port: int, instances: int) -> int:
    for fresh, label in ((True, "new connection per request"),
                         (False, "one keep-alive connection")):  # fmt: skip
        cold, warm = [], []
        for n in range(min(50, instances)):
            src = address(n if fresh else instances - 1 - n)
            cold.append((await crawl(port, src, fresh))[0])
            warm.append((await crawl(port, src, fresh))[0])
        print(
            f"crawl (28 requests, {label}): cold p50 "
            f"{statistics.median(cold) * 1e3:.1f} ms max "
            f"{max(cold) * 1e3:.1f} ms; warm p50 "
            f"{statistics.median(warm) * 1e3:.1f} ms max "
            f"{max(warm) * 1e3:.1f} ms"
        )
    return 2 * 2 * 28 * min(50, instances)


async def load(
    port: int, clients: int, seconds: float, rate: float | None
) -> int:
    """``clients`` keep-alive clients; closed loop (as fast as answers
    come) when ``rate`` is None, else ``rate`` req/s in total, each
    latency measured from the request's scheduled time (so a late
    answer also delays, and counts against, the requests behind it)."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    stop = start + seconds
    gap = clients / rate if rate else 0.0

    async def client(n: int) -> None:
        nonlocal errors
        conn = Conn(port, address(n))
        i = n
        due = start + gap * n / clients
        while due < stop:
            if gap:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            else:
                due = time.perf_counter()
            try:
                ok = await conn.get(CRAWL[i % 28]) == 200
            except (OSError, ValueError):
                ok = False
                await conn.close()
            latencies.append(time.perf_counter() - due)
            errors += not ok
            i += 1
            due += gap
        await conn.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    wall = time.perf_counter() - start
    mode = f"offered {rate:,.0f} req/s" if rate else "closed loop"
    print(
        f"{clients} keep-alive clients, {mode}, {seconds:.0f} s: "
        f"{len(latencies) / wall:,.0f} req/s, p50 "
        f"{pct(latencies, 0.5) * 1e3:.1f} ms, p99 "
        f"{pct(latencies, 0.99) * 1e3:.1f} ms, errors {errors}"
    )
    return len(latencies)


async def storm(port: int, instances: int) -> int:
    start = time.perf_counter()
    results = await asyncio.gather(
        *(crawl(port, address(n), True) for n in range(instances))
    )
    wall = time.perf_counter() - start
    times = [r[0] for r in results]
    errors = sum(r[1] for r in results)
    print(
        f"boot storm: {instances} instances x 28 = {instances * 28:,} "
        f"requests (new connection each) in {wall:.2f} s "
        f"({instances * 28 / wall:,.0f} req/s), errors {errors}, "
        f"crawl p50 {pct(times, 0.5):.2f} s p99 {pct(times, 0.99):.2f} s"
    )
    return instances * 28


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("metadata server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument(
        "--serve", type=int, metavar="PORT", help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        return _serve(args.serve, args.instances)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port),
         "--instances", str(args.instances)]
    )  # fmt: skip
    try:
        _wait(port)
        phases: tuple[tuple[str, Coroutine[Any, Any, int]], ...] = (
            ("crawl", crawl_latency(port, args.instances)),
            ("load", load(port, args.clients, args.seconds, None)),
            ("rate", load(port, args.clients, args.seconds, args.rate)),
            ("storm", storm(port, args.instances)),
        )
        print(
            f"load average before: {os.getloadavg()[0]:.2f} "
            f"({os.cpu_count()} CPUs)"
        )
        for name, coro in phases:
            cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
            own0 = time.process_time()
            count = asyncio.run(coro)
            cpu = cpu_seconds(server.pid) - cpu0
            own = time.process_time() - own0
            wall = time.perf_counter() - t0
            print(
                f"  ({name}: {wall:.2f} s wall; CPU: server {cpu:.2f} s "
                f"= {cpu / count * 1e6:.0f} us/request, load generator "
                f"{own:.2f} s; load average {os.getloadavg()[0]:.2f})"
            )
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
