"""dnsmasq DORA throughput experiments, without the flatnet daemon (root).

    .venv/bin/python bench/dhcp_dora.py --hosts 10000 --count 3000 \\
        --script hook [--no-domain] [--no-hostsdir] [--procs 2]

Starts ONE dnsmasq with nova's argv shape (static range, hostsfile of
``--hosts`` lines, ``--leasefile-ro``) in a fresh namespace and drives
``--count`` DORA handshakes with the pre-built-frame client
(bench/dhcp_client.py) from another namespace on the same bridge.
``--script`` picks the ``--dhcp-script``:

* ``none``: no --dhcp-script at all;
* ``noop``: ``#!/bin/sh`` + ``exit 0``;
* ``hook``: flatnet's generated sh hook (plan/dhcp_hook.py), journal;
* ``hook-nowrite``: the same hook with the journal ``printf`` removed;
* ``lua``: flatnet's Lua hook (plan/lease_hook.lua) with
  ``--dhcp-luascript`` and the arguments flatnet passes with it
  (plan/dhcp_hook.py ``hook_args``), same journal, no fork per event.

``--ingest``: a SQLite database holding every bench host (same MAC and
address), and the daemon's ingest (service/leases.py) polling the
journal every 50 ms in a thread, as flatnet-network does: the figure is
then handshakes until every event is IN THE DATABASE.

Prints one JSON line: handshakes/s, client retries, CPU seconds of the
dnsmasq main process, of its script helper (incl. the scripts it ran)
and of the client, and when the last journal line arrived.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import dhcp_client
import dhcp_storm
import netaddr
import proc_cpu

from flatnet.db import api as db_api
from flatnet.ipam import network_layout
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.plan import dhcp_hook
from flatnet.plan import dnsmasq as plan
from flatnet.service import leases

TICK = os.sysconf("SC_CLK_TCK")


def host_of(n: int) -> tuple[str, str]:
    """MAC and address of bench host ``n`` (10.240.0.10 upwards)."""
    ip = 0x0AF0000A + n
    return dhcp_storm.mac_of(n), ".".join(
        str(ip >> s & 0xFF) for s in (24, 16, 8, 0)
    )


def write_script(tmp: pathlib.Path, kind: str, leased: int) -> str | None:
    """The --dhcp-script of experiment ``kind``; ``init`` prints the
    ``leased`` pre-existing leases (written by :func:`dnsmasq_argv`)."""
    path = tmp / "hook.sh"
    init = tmp / "init.sh"
    init.write_text(
        f'#!/bin/sh\n[ "$1" = init ] && cat {tmp}/leases\nexit 0\n'
    )
    init.chmod(0o755)
    if kind == "none":
        return None
    if kind == "lua":
        path = tmp / dhcp_hook.LUA_SCRIPT_NAME
        path.write_text(dhcp_hook.lua_script())
        return str(path)
    if kind == "noop":
        text = f'#!/bin/sh\n[ "$1" = init ] && exec {init} init\nexit 0\n'
    else:
        text = dhcp_hook.hook_script(str(init))
        if kind == "hook-nowrite":
            lines = text.splitlines(keepends=True)
            text = "".join(x for x in lines if not x.startswith("printf"))
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def dnsmasq_argv(args: argparse.Namespace, tmp: pathlib.Path) -> list[str]:
    script = write_script(tmp, args.script, args.leased)
    expiry = int(time.time()) + 86400
    (tmp / "leases").write_text(
        "".join(
            f"{expiry} {host_of(n)[0]} {host_of(n)[1]} h{n} *\n"
            for n in range(args.hosts - args.leased, args.hosts)
        )
    )
    (tmp / "opts").write_text("3,10.240.0.1\n")
    (tmp / "hosts.d").mkdir()
    lines, files = [], {}
    for n in range(args.hosts):
        mac, ip = host_of(n)
        line = f"{mac},h{n}.novalocal,{ip}\n"
        if n < args.in_dir:
            files[mac.replace(":", "-")] = line
        else:
            lines.append(line)
    (tmp / "hosts").write_text("".join(lines))
    for name, line in files.items():
        (tmp / "hosts.d" / name).write_text(line)
    argv = [
        "env",
        f"FLATNET_EVENTS={tmp}/bench.events",
        "dnsmasq",
        "--keep-in-foreground",
        "--strict-order",
        "--bind-interfaces",
        f"--conf-file={args.conf_file}",
        f"--pid-file={tmp}/pid",
        f"--dhcp-optsfile={tmp}/opts",
        f"--listen-address={dhcp_storm.SERVER}",
        "--except-interface=lo",
        "--dhcp-range=set:bench,10.240.0.2,static,255.255.0.0,86400s",
        "--dhcp-lease-max=65536",
        f"--dhcp-hostsfile={tmp}/hosts",
    ]
    if script:
        argv += dhcp_hook.hook_args(script, args.script == "lua")
    argv += ["--no-hosts", "--leasefile-ro"]
    if args.domain:
        argv.append("--domain=novalocal")
    if args.addn != "none":
        text = "".join(
            f"{host_of(n)[1]}\th{n}.novalocal"
            + (f" h{n}" if args.addn == "both" else "")
            + "\n"
            for n in range(args.hosts)
        )
        (tmp / "addn").write_text(text)
        argv.append(f"--addn-hosts={tmp}/addn")
        (tmp / "hd").mkdir()
        argv.append(f"--hostsdir={tmp}/hd")
    if args.hostsdir:
        argv.append(f"--dhcp-hostsdir={tmp}/hosts.d")
    return argv + args.extra


def cpu_of(pid: int, children: bool = False) -> float:
    """utime+stime (and reaped children's) of ``pid`` in seconds."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    rest = fields.rsplit(")", 1)[1].split()
    ticks = int(rest[11]) + int(rest[12])
    if children:
        ticks += int(rest[13]) + int(rest[14])
    return ticks / TICK


def helper_of(pid: int) -> int | None:
    """dnsmasq's script helper: its child."""
    found = proc_cpu.children({pid})
    return min(found) if found else None


def wait_lines(path: pathlib.Path, count: int, limit: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            with path.open("rb") as handle:
                if sum(1 for line in handle if line.strip()) >= count:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.01)
    return None


def clients(cli: str, args: argparse.Namespace) -> list[dict[str, float]]:
    picked = [host_of(n) for n in range(args.in_dir, args.hosts)]
    picked = picked[: args.count]
    procs = []
    start_at = time.time() + 0.5 + 0.15 * args.procs
    for i in range(args.procs):
        job = {
            "hosts": picked[i :: args.procs],
            "window": args.window,
            "start_at": start_at,
        }
        argv = ["ip", "netns", "exec", cli, sys.executable, __file__]
        argv += ["--client", json.dumps(job)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE))
    return [json.loads(p.communicate()[0]) for p in procs]


def measure(args: argparse.Namespace, host: str, cli: str) -> dict:
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fndora"))
    tmp.chmod(0o755)
    ingester = None
    if args.ingest:
        ingester = Ingester(tmp, args.hosts)
    try:
        argv = ["ip", "netns", "exec", host, *dnsmasq_argv(args, tmp)]
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
        while not (tmp / "pid").exists():
            time.sleep(0.01)
        pid = int((tmp / "pid").read_text())
        time.sleep(0.3 + args.hosts / 20000)
        helper = helper_of(pid)
        main0 = cpu_of(pid)
        help0 = cpu_of(helper, True) if helper else 0.0
        perf = None
        if args.perf:
            perf = subprocess.Popen(
                ["perf", "record", "-F", "2000", "-g", "-o", args.perf]
                + ["-p", str(pid)],
                stderr=subprocess.DEVNULL,
            )
        if args.events:
            job = {
                "files": args.events,
                "per_file": args.per_file,
                "first": args.hosts,
                "dir": f"{tmp}/hosts.d",
                "names": args.addn != "none",
                "pid": pid,
            }
            argv = ["ip", "netns", "exec", host, sys.executable, __file__]
            out = subprocess.run(
                [*argv, "--events-job", json.dumps(job)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            print(out.strip(), flush=True)
        # the clients start together 0.5 + 0.15 * procs s from now
        t0 = time.monotonic() + 0.5 + 0.15 * args.procs
        results = clients(cli, args) if args.count else []
        if perf is not None:
            perf.send_signal(2)
            perf.wait()
        done = sum(int(r["handshakes"]) for r in results)
        journal = None
        if args.script in ("hook", "lua"):
            end = wait_lines(tmp / "bench.events", done, 120)
            journal = end - t0 if end else None
        in_db = ingester.wait(done, 120) - t0 if ingester else None
        main = cpu_of(pid) - main0
        helped = (cpu_of(helper, True) - help0) if helper else 0.0
        proc.kill()
        proc.wait()
    finally:
        if ingester:
            ingester.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = max([r["seconds"] for r in results] or [1.0])
    return {
        "hosts": args.hosts,
        "script": args.script,
        "domain": args.domain,
        "hostsdir": args.hostsdir,
        "addn": args.addn,
        "leased": args.leased,
        "procs": args.procs,
        "window": args.window,
        "handshakes": done,
        "per_second": round(done / seconds),
        "retries": sum(int(r["retries"]) for r in results),
        "dnsmasq_cpu": round(main, 2),
        "helper_cpu": round(helped, 2),
        "client_cpu": round(sum(r["client_cpu"] for r in results), 2),
        "seconds": round(seconds, 2),
        "journal_done_s": journal and round(journal, 2),
        "in_db_s": in_db and round(in_db, 2),
        "in_db_per_second": in_db and round(done / in_db),
        "helper_ms_per_event": round(helped / max(done, 1) * 1000, 3),
        "loadavg": round(os.getloadavg()[0], 2),
    }


class Ingester:
    """A database of the bench hosts and the daemon's ingest in a
    thread (every 50 ms, like flatnet-network's loop)."""

    def __init__(self, tmp: pathlib.Path, hosts: int) -> None:
        self.db = db_api.Database(f"sqlite:///{tmp}/flatnet.sqlite")
        db_api.sync(self.db)
        net = db_api.network_create(
            self.db, network_layout(dhcp_storm.SUBNET), label="b", bridge="b"
        )
        for n in range(hosts):
            mac, ip = host_of(n)
            db_api.instance_create_allocated(
                self.db,
                db_api.InstanceSpec(hostname=f"h{n}", display_name=f"h{n}"),
                [
                    db_api.VifRequest(
                        network_id=net.id,
                        mac=netaddr.EUI(mac),
                        address=netaddr.IPAddress(ip),
                    )
                ],
            )
        self.net_id = net.id
        self.path = str(tmp / "bench.events")
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.05):
            leases.ingest_journal(self.db, self.path)

    def wait(self, count: int, limit: float) -> float:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if len(db_api.leases(self.db, self.net_id)) >= count:
                break
            time.sleep(0.01)
        return time.monotonic()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def event_costs(job: str) -> None:
    """(in the host namespace) time from writing one hostsdir file (or a
    SIGHUP) until dnsmasq answers a DNS probe again, per event."""
    spec = json.loads(job)
    proc = DnsmasqProcess("bench", plan.dnsmasq_paths("/x", "bench"))
    times = []
    for i in range(spec["files"]):
        lines = "".join(
            f"{mac},h{n}.novalocal,{ip}\n"
            for n in range(
                spec["first"] + i * spec["per_file"],
                spec["first"] + (i + 1) * spec["per_file"],
            )
            for mac, ip in [host_of(n)]
        )
        t0 = time.monotonic()
        if spec["names"]:
            names = "".join(
                f"{host_of(n)[1]}\th{n}.novalocal\th{n}\n"
                for n in range(
                    spec["first"] + i * spec["per_file"],
                    spec["first"] + (i + 1) * spec["per_file"],
                )
            )
            tmp = f"{spec['dir']}/../hd/.tmp{i}"
            pathlib.Path(tmp).write_text(names)
            os.rename(tmp, f"{spec['dir']}/../hd/batch{i}")
        tmp = f"{spec['dir']}/.tmp{i}"
        pathlib.Path(tmp).write_text(lines)
        os.rename(tmp, f"{spec['dir']}/batch{i}")
        proc.wait_served(dhcp_storm.SERVER, 120)
        times.append(time.monotonic() - t0)
    t0 = time.monotonic()
    os.kill(spec["pid"], signal.SIGHUP)
    proc.wait_served(dhcp_storm.SERVER, 120)
    hup = time.monotonic() - t0
    print(
        json.dumps(
            {
                "file_ms": [round(x * 1000, 1) for x in times],
                "sighup_ms": round(hup * 1000, 1),
            }
        )
    )


def run_client(job: str) -> None:
    spec = json.loads(job)
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    result = dhcp_client.dora(
        "c0",
        [tuple(x) for x in spec["hosts"]],
        dhcp_storm.SERVER,
        spec["window"],
    )
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument(
        "--script",
        default="hook",
        choices=["none", "noop", "hook", "hook-nowrite", "lua"],
    )
    parser.add_argument(
        "--ingest",
        action="store_true",
        help="time until every event is in a SQLite database",
    )
    parser.add_argument("--no-domain", dest="domain", action="store_false")
    parser.add_argument("--no-hostsdir", dest="hostsdir", action="store_false")
    parser.add_argument("--in-dir", type=int, default=0)
    parser.add_argument(
        "--leased", type=int, default=0, help="leases given at init"
    )
    parser.add_argument(
        "--addn",
        default="none",
        choices=["none", "fqdn", "both"],
        help="--addn-hosts with every host's name.domain (and name)",
    )
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--conf-file", default="")
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--perf", help="perf record dnsmasq into FILE")
    parser.add_argument("--client")
    parser.add_argument(
        "--events",
        type=int,
        default=0,
        help="write this many hostsdir files, then HUP",
    )
    parser.add_argument("--per-file", type=int, default=1)
    parser.add_argument("--events-job")
    args = parser.parse_args()
    if args.client:
        run_client(args.client)
        return
    if args.events_job:
        event_costs(args.events_job)
        return
    suffix = str(os.getpid())
    host, cli = f"fndh{suffix}", f"fndc{suffix}"
    try:
        dhcp_storm.setup_namespaces(host, cli)
        print(json.dumps(measure(args, host, cli)), flush=True)
    finally:
        dhcp_storm.teardown_namespaces(host, cli)


if __name__ == "__main__":
    main()
