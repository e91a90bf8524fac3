"""A network for test VMs: a guarded root-namespace bridge, and a "site"
namespace plugged into it that plays the network host: gateway address,
a real dnsmasq serving static DHCP entries, an HTTP server, and a frame
logger (vm_sniff) recording what reached the wire. Victim namespaces
can be plugged into the same bridge.
"""

from __future__ import annotations

import http.server  # noqa: F401 (python -m http.server runs in the site)
import itertools
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from tests.functional import netns, vm

_subnets = itertools.count(1)
SITE_IF = "site0"


class VmSite:
    def __init__(self, make_netns: Callable[[str], str]) -> None:
        n = next(_subnets) % 250
        self.prefix = f"10.98.{n}"
        self.gateway = f"{self.prefix}.1"
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="fntsite"))
        self.dir.chmod(0o755)
        self.make_netns = make_netns
        self.bridge = vm.TestBridge().create()
        self.ns = make_netns("site")
        self.bridge.plug(self.ns, SITE_IF)
        netns.run(
            ["ip", "addr", "add", f"{self.gateway}/24", "dev", SITE_IF],
            self.ns,
        )
        self.hosts = self.dir / "dhcp-hosts"
        self.hosts.write_text("")
        self.procs: list[subprocess.Popen[str]] = []
        self._start_dnsmasq()
        self._start_http()
        self.frames_path = self.dir / "frames.jsonl"
        self._start(
            [sys.executable, "-m", "tests.functional.vm_sniff", SITE_IF,
             str(self.frames_path)], cwd=vm.ROOT,
        )  # fmt: skip
        vm.wait_until(self.frames_path.exists, 10, "sniffer ready")

    def _start(self, argv: list[str], **kw: object) -> None:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.procs.append(netns.popen(argv, self.ns, **quiet, **kw))

    def _start_dnsmasq(self) -> None:
        self.dnsmasq_log = self.dir / "dnsmasq.log"
        self._start([
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
            "--bind-interfaces", f"--interface={SITE_IF}",
            "--except-interface=lo", f"--listen-address={self.gateway}",
            "--port=0", "--domain=novalocal",
            f"--dhcp-range={self.prefix}.0,static,255.255.255.0,120s",
            f"--dhcp-hostsfile={self.hosts}",
            f"--dhcp-option=option:router,{self.gateway}", "--no-ping",
            "--leasefile-ro", "--log-dhcp",
            f"--log-facility={self.dnsmasq_log}", "--user=root",
        ])  # fmt: skip

    def _start_http(self) -> None:
        self.www = self.dir / "www"
        # an EC2-style tree: a directory URL answers its entries
        md = self.www / "latest/meta-data"
        (md / "placement").mkdir(parents=True)
        (md / "index.html").write_text("instance-id\nplacement/\n")
        (md / "instance-id").write_text("i-fnt0001")
        (md / "placement/index.html").write_text("availability-zone\n")
        (md / "placement/availability-zone").write_text("nova")
        self.http_port = 8775
        self._start([
            sys.executable, "-m", "http.server", str(self.http_port),
            "--bind", self.gateway, "--directory", str(self.www),
        ])  # fmt: skip
        self.url = f"http://{self.gateway}:{self.http_port}/"

    def add_host(self, mac: str, ip: str, hostname: str) -> None:
        """A static DHCP entry; dnsmasq rereads hostsfiles on SIGHUP."""
        with self.hosts.open("a") as out:
            out.write(f"{mac},{hostname}.novalocal,{ip}\n")
        self.procs[0].send_signal(1)
        time.sleep(0.2)

    def victim(self, mac: str) -> str:
        """A namespace with ``eth0`` (``mac``) on the bridge."""
        ns = self.make_netns("vic")
        self.bridge.plug(ns, "eth0", mac)
        return ns

    def frames(self) -> list[dict[str, object]]:
        lines = self.frames_path.read_text().splitlines()
        return [f for f in map(json.loads, lines) if "ready" not in f]

    def dhcp_log(self) -> str:
        return (
            self.dnsmasq_log.read_text() if self.dnsmasq_log.exists() else ""
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        netns.delete(self.ns)
        self.bridge.close()
        shutil.rmtree(self.dir, ignore_errors=True)
