"""A DHCP test site: a network-host namespace running the real
flatnet-network daemon, and instance namespaces with busybox udhcpc.

Layout: host ns has bridge br100 (made by the daemon) whose uplink is the
veth ``fi0`` (flat_interface; its peer sits alone in a "wire" ns). Each
instance gets a veth pair: ``eth0`` (the allocated MAC) in its own ns,
the other end plugged into br100 in the host ns.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from tests.functional import netns

BIN = pathlib.Path(sys.executable).parent
UDHCPC_SCRIPT = """#!/bin/sh
echo "$1 ip=$ip router=$router dns=$dns hostname=$hostname domain=$domain" \
    >> "$UDHCPC_LOG"
case "$1" in
bound|renew) ip addr flush dev "$interface"
             ip addr add "$ip/$mask" dev "$interface" ;;
deconfig|nak) ip addr flush dev "$interface" ;;
esac
"""


def wait_for(
    probe: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Client:
    """udhcpc running in the foreground in one instance namespace."""

    def __init__(self, ns: str, log: pathlib.Path, script: pathlib.Path):
        self.ns = ns
        self.log = log
        env = {**os.environ, "UDHCPC_LOG": str(log)}
        self.proc = netns.popen(
            [
                "udhcpc",
                "-f",
                "-i",
                "eth0",
                "-t",
                "20",
                "-T",
                "1",
                "-A",
                "1",
                "-s",
                str(script),
            ],
            netns=ns,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def events(self) -> list[dict[str, str]]:
        if not self.log.exists():
            return []
        result = []
        for line in self.log.read_text().splitlines():
            kind, *pairs = line.split(" ")
            event = dict(p.split("=", 1) for p in pairs if "=" in p)
            event["event"] = kind
            result.append(event)
        return result

    def last(self, kinds: set[str]) -> dict[str, str] | None:
        found = [e for e in self.events() if e["event"] in kinds]
        return found[-1] if found else None

    def bound(self, timeout: float = 20.0) -> dict[str, str]:
        return wait_for(
            lambda: self.last({"bound"}),
            timeout,  # type: ignore[return-value]
            f"udhcpc bound in {self.ns}",
        )

    def renew(self, timeout: float = 10.0) -> str:
        """SIGUSR1 (renew now); 'renew' on ACK, 'nak' on DHCPNAK."""
        count = len(self.events())
        self.proc.send_signal(signal.SIGUSR1)

        def answer() -> str | None:
            new = [e["event"] for e in self.events()[count:]]
            for kind in ("renew", "nak", "bound"):
                if kind in new:
                    return kind
            return None

        return wait_for(answer, timeout, "renew answer")  # type: ignore[return-value]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Site:
    def __init__(
        self,
        make_netns: Callable[[str], str],
        tmp: pathlib.Path,
        cidr: str = "10.231.0.0/24",
        **options: object,
    ) -> None:
        self.make_netns = make_netns
        self.tmp = tmp
        self.host = make_netns("nh")
        wire = make_netns("wr")
        netns.veth(self.host, "fi0", wire, "up0")
        self.conf = tmp / "flatnet.conf"
        values: dict[str, object] = {
            "host": "nethost",
            "state_path": str(tmp),
            "networks_path": str(tmp / "networks"),
            "flat_interface": "fi0",
            "dhcpbridge": str(BIN / "flatnet-dhcpbridge"),
            "dhcpbridge_flagfile": str(self.conf),
            "sync_interval": "0.05",
            "periodic_interval": "1",
            "dhcp_lease_time": "120",
        }
        values.update(options)
        lines = ["[DEFAULT]"] + [f"{k} = {v}" for k, v in values.items()]
        lines += [
            "[database]",
            f"connection = sqlite:///{tmp}/flatnet.sqlite",
            "",
        ]
        self.conf.write_text("\n".join(lines))
        self.script = tmp / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)
        self.daemon: subprocess.Popen[str] | None = None
        self._log_handle: object | None = None
        self.clients: list[Client] = []
        self.daemon_log = tmp / "daemon.log"
        self.manage("db", "sync")
        self.manage(
            "network",
            "create",
            "--label",
            "private",
            "--fixed-range-v4",
            cidr,
            "--bridge",
            "br100",
            "--dns1",
            "10.231.0.53",
        )
        self.np = tmp / "networks"

    def manage(
        self, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            str(BIN / "flatnet-manage"),
            args[0],
            args[1],
            "--config-file",
            str(self.conf),
            *args[2:],
        ]
        return netns.run(argv, check=check, timeout=60)

    def start_daemon(self) -> None:
        handle = open(self.daemon_log, "a")  # noqa: SIM115
        self._close_log()
        self._log_handle = handle
        self.daemon = netns.popen(
            [str(BIN / "flatnet-network"), "--config-file", str(self.conf)],
            netns=self.host,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.dnsmasq_pid, 20, "dnsmasq started by the daemon")

    def stop_daemon(self) -> None:
        assert self.daemon is not None
        self.daemon.send_signal(signal.SIGTERM)
        assert self.daemon.wait(timeout=10) == 0
        self.daemon = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()  # type: ignore[attr-defined]
            self._log_handle = None

    def close(self) -> None:
        """Stop clients and the daemon (dnsmasq is the caller's)."""
        for client in self.clients:
            client.stop()
        if self.daemon is not None:
            self.daemon.kill()
            self.daemon.wait()
            self.daemon = None
        self._close_log()

    def dnsmasq_pid(self) -> int | None:
        try:
            pid = int((self.np / "nova-br100.pid").read_text())
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        marker = f"--dhcp-hostsfile={self.np}/nova-br100.conf".encode()
        return pid if marker in cmdline.split(b"\0") else None

    def kill_dnsmasqs(self) -> None:
        """SIGKILL every process carrying this site's dnsmasq marker:
        the server and its script helper (which outlives a killed server
        while it runs queued hook calls)."""
        marker = f"--dhcp-hostsfile={self.np}/nova-br100.conf".encode()
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in argv:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def create(self, name: str, mac: str) -> dict[str, object]:
        out = self.manage(
            "instance",
            "create",
            name,
            "--mac",
            mac,
            "--network",
            "private",
            "--host",
            "nethost",
            "--wait",
            "--timeout",
            "20",
            "--format",
            "json",
        )
        data = json.loads(out.stdout)
        return data[0] if isinstance(data, list) else data

    def plug(self, mac: str) -> str:
        """A new instance namespace whose eth0 (``mac``) is on br100."""
        ns = self.make_netns("vm")
        port = netns.unique_name("p")
        netns.veth(self.host, port, ns, "eth0", mac_b=mac)
        netns.run(
            ["ip", "link", "set", port, "master", "br100"], netns=self.host
        )
        return ns

    def client(self, ns: str) -> Client:
        made = Client(ns, self.tmp / f"{ns}.log", self.script)
        self.clients.append(made)
        return made

    def daemon_lines(self, text: str) -> int:
        return self.daemon_log.read_text().count(text)
