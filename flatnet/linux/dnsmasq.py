"""EXECUTOR: one network's dnsmasq process (start, HUP, stop, probe).

A process is "ours" only if ``/proc/<pid>/cmdline`` contains the exact
argument ``--dhcp-hostsfile=<this network's hosts file>``; a pid file
pointing at anything else (a recycled pid, a stale file) is never
signalled (nova ``is_pid_cmdline_correct``, made exact).

dnsmasq daemonizes as in nova and writes its own pid file; it is not our
child, so it keeps serving while flatnet-network restarts, and the next
daemon adopts it when its command line and environment still match.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence

from flatnet import exception
from flatnet.plan.dnsmasq import DnsmasqPaths

LOG = logging.getLogger(__name__)

_ENV_KEYS = ("CONFIG_FILE", "NETWORK_ID", "FLATNET_EVENTS")
_PROBE_QNAME = b"\x07version\x04bind\x00"
_TXT_CHAOS = struct.pack("!HH", 16, 3)


def _read_nul_list(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]


def process_cmdline(pid: int, proc: str = "/proc") -> list[str] | None:
    """argv of ``pid`` (None if gone, empty for a zombie)."""
    return _read_nul_list(f"{proc}/{pid}/cmdline")


def process_environ(pid: int, proc: str = "/proc") -> dict[str, str]:
    """Environment of ``pid`` ({} if unreadable)."""
    items = _read_nul_list(f"{proc}/{pid}/environ") or []
    return dict(item.split("=", 1) for item in items if "=" in item)


def has_socket(pid: int, proc: str = "/proc") -> bool:
    """True if ``pid`` holds a socket. dnsmasq's script helper (a fork
    with the same command line) closes every socket; the server itself
    always holds its DHCP/DNS sockets."""
    try:
        names = os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(f"{proc}/{pid}/fd/{name}").startswith("socket:"):
                return True
        except OSError:
            continue
    return False


def split_env(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``env K=V ... cmd args`` -> ({K: V}, [cmd, args])."""
    args = list(argv)
    env: dict[str, str] = {}
    if args and args[0] == "env":
        args.pop(0)
        while args and "=" in args[0] and not args[0].startswith("-"):
            key, value = args.pop(0).split("=", 1)
            env[key] = value
    return env, args


@contextlib.contextmanager
def _errors(bridge: str, action: str) -> Iterator[None]:
    try:
        yield
    except (OSError, subprocess.SubprocessError) as exc:
        raise exception.DnsmasqError(
            bridge=bridge, reason=f"{action}: {exc}"
        ) from exc


class DnsmasqProcess:
    """The dnsmasq that serves ``bridge`` with the files in ``paths``."""

    def __init__(
        self, bridge: str, paths: DnsmasqPaths, proc: str = "/proc"
    ) -> None:
        self.bridge = bridge
        self.paths = paths
        self._proc = proc
        self._marker = f"--dhcp-hostsfile={paths.hosts}"

    def owns(self, pid: int) -> bool:
        """True if ``pid`` is this network's dnsmasq (exact argument)."""
        cmdline = process_cmdline(pid, self._proc)
        return bool(cmdline) and self._marker in (cmdline or [])

    def _pid_from_file(self) -> int | None:
        try:
            with open(self.paths.pid, encoding="ascii") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def _scan(self) -> int | None:
        """Our dnsmasq found by its marker, never its script helper.

        NOTE: the helper outlives a killed dnsmasq while it runs the
        queued hook calls (dnsmasq sends ``old`` for EVERY lease at
        start: thousands of calls); taking it for dnsmasq would delay
        the restart until it is done.
        """
        for name in os.listdir(self._proc):
            if not name.isdigit() or not self.owns(int(name)):
                continue
            if has_socket(int(name), self._proc):
                return int(name)
        return None

    def pid(self) -> int | None:
        """Pid of our running dnsmasq, or None.

        Trusts the pid file only after the cmdline check; a stale or
        foreign pid falls back to a /proc scan for our exact marker.
        """
        pid = self._pid_from_file()
        if pid is not None and self.owns(pid):
            return pid
        if pid is not None:
            LOG.info("dnsmasq %s: pid %d is stale", self.bridge, pid)
        return self._scan()

    def matches(self, pid: int, argv: Sequence[str]) -> bool:
        """True if ``pid`` runs exactly ``argv`` (cmdline + env prefix)."""
        env, command = split_env(argv)
        if process_cmdline(pid, self._proc) != command:
            return False
        environ = process_environ(pid, self._proc)
        return all(environ.get(key) == env.get(key) for key in _ENV_KEYS)

    def start(self, argv: Sequence[str], timeout: float = 60.0) -> int:
        """Launch ``argv``; return the daemon's pid once it is ours.

        dnsmasq's parent exits after the daemon wrote its pid file (and
        after the ``init`` script ran). Raises DnsmasqError.
        """
        started = time.monotonic()
        with _errors(self.bridge, "start"):
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        if done.returncode != 0:
            raise exception.DnsmasqError(
                bridge=self.bridge,
                reason=f"exit {done.returncode}: {done.stderr.strip()}",
            )
        pid = self._pid_from_file()
        if pid is None or not self.owns(pid):
            raise exception.DnsmasqError(
                bridge=self.bridge, reason="no pid file after start"
            )
        LOG.info(
            "dnsmasq %s: started pid %d in %.3f s (incl. init)",
            self.bridge,
            pid,
            time.monotonic() - started,
        )
        return pid

    def reload(self, pid: int) -> None:
        """SIGHUP ``pid`` (re-read hosts/opts files). Raises DnsmasqError."""
        with _errors(self.bridge, f"HUP {pid}"):
            os.kill(pid, signal.SIGHUP)

    def stop(self, pid: int, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` (Neutron's pattern)."""
        if not self.owns(pid):
            return
        with _errors(self.bridge, f"stop {pid}"):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self.owns(pid):
                    return
                time.sleep(0.02)
            os.kill(pid, signal.SIGKILL)

    def wait_served(self, listen: str, timeout: float = 5.0) -> bool:
        """True once dnsmasq answers a local DNS query on ``listen``.

        NOTE: dnsmasq's main loop handles the signal pipe and inotify
        before DNS sockets (dnsmasq.c), so an answer to a query sent
        after a HUP or a hostsdir write proves that the reload/read is
        done. ``version.bind CH TXT`` is answered by dnsmasq itself and
        is never forwarded upstream.
        """
        qid = secrets.randbelow(65536)
        query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        query += _PROBE_QNAME + _TXT_CHAOS
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((listen, 53))
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(min(left, 0.25))
                try:
                    sock.send(query)
                    reply = sock.recv(512)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                if reply[:2] == query[:2]:
                    return True
        return False
