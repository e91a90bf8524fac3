"""EXECUTOR: one network's dnsmasq process (start, HUP, stop, probe).

A process is this network's dnsmasq only if it carries the exact
argument ``--dhcp-hostsfile=<this network's hosts file>`` (nova
``is_pid_cmdline_correct``, made exact) AND it is proven to have been
started by root (:meth:`DnsmasqProcess.disproof`): it lives in our
network and user namespaces, runs a root-owned executable and holds a
UDP socket on the DHCP server port 67 that uid 0 created. Anyone can
start a process with that argument (``exec -a dnsmasq``), and dnsmasq
hands its pid file to ``nobody`` (dnsmasq.c chowns it before dropping
privileges), so neither the command line nor the pid file is trusted
alone: an unproven process is never signalled, and a WARNING names it
once. The proof does not depend on who started dnsmasq, so a dnsmasq
left by a previous flatnet-network (or nova-network) is adopted.

dnsmasq daemonizes as in nova and writes its own pid file; it is not our
child, so it keeps serving while flatnet-network restarts, and the next
daemon adopts it when its command line and environment still match.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence

from flatnet import exception
from flatnet.linux import procfs
from flatnet.linux.procfs import process_cmdline, process_environ, split_env
from flatnet.plan.dnsmasq import DnsmasqPaths

LOG = logging.getLogger(__name__)

DHCP_SERVER_PORT = 67
NETNS_RUN_DIR = "/var/run/netns"
_ENV_KEYS = ("CONFIG_FILE", "NETWORK_ID", "FLATNET_EVENTS")
_PROBE_QNAME = b"\x07version\x04bind\x00"
_TXT_CHAOS = struct.pack("!HH", 16, 3)


def netns_file(netns: str) -> str:
    """Where ``ip netns`` binds the named namespace ``netns``."""
    return f"{NETNS_RUN_DIR}/{netns}"


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
        self,
        bridge: str,
        paths: DnsmasqPaths,
        proc: str = "/proc",
        *,
        netns: str | None = None,
        marker: str | None = None,
        port: int = DHCP_SERVER_PORT,
    ) -> None:
        """``netns``: a named network namespace the dnsmasq runs in (a
        DHCP shard), started there with ``ip netns exec`` and proven
        there; ``marker``/``port``: another exact argument and server
        port (the DNS-only dnsmasq of a sharded network: its pid file,
        53)."""
        self.bridge = bridge
        self.paths = paths
        self._proc = proc
        self._netns = netns
        self._port = port
        self._marker = marker or f"--dhcp-hostsfile={paths.hosts}"
        self._proven: tuple[int, int] | None = None  # (pid, start time)
        self._reported: set[tuple[int, int]] = set()
        self._stale: int | None = None

    def owns(self, pid: int) -> bool:
        """True if ``pid`` carries this network's marker (exact argument).
        Anyone can start such a process: see :meth:`proven`."""
        cmdline = process_cmdline(pid, self._proc)
        return bool(cmdline) and self._marker in (cmdline or [])

    def disproof(self, pid: int) -> str | None:
        """Why ``pid`` is not a dnsmasq started by root, or None.

        Binding a port below 1024 needs privilege in the network
        namespace's user namespace, and /proc/<pid>/net/udp names the uid
        that created each socket: a uid-0 socket on port 67 in our own
        namespaces is a privileged DHCP server. The script helper (a
        fork with the same command line) closes every socket.
        """
        netns_path = None if self._netns is None else netns_file(self._netns)
        if not procfs.same_namespaces(pid, self._proc, netns_path):
            return "it runs in another network or user namespace"
        if not procfs.executable(pid, self._proc).root_owned:
            return "its executable is not a root-owned file"
        ports = procfs.root_udp_ports(pid, self._proc)
        if self._port not in ports:
            return (
                f"it holds no UDP socket on port {self._port} created by root"
            )
        return None

    def proven(self, pid: int) -> bool:
        """True if ``pid`` is this network's dnsmasq, started by root.

        The verdict is kept for the process (pid and start time); an
        impostor is reported once, with a WARNING.
        """
        start = procfs.start_time(pid, self._proc)
        if start is None:
            return False
        if self._proven == (pid, start):
            return True
        if not self.owns(pid):
            return False
        problem = self.disproof(pid)
        if problem is None:
            self._proven = (pid, start)
            return True
        self._report(pid, start, problem)
        return False

    def _report(self, pid: int, start: int, problem: str) -> None:
        """WARNING once per impostor; the script helper (root, a trusted
        executable, no socket) is expected and only logged at DEBUG."""
        if (pid, start) in self._reported:
            return
        self._reported.add((pid, start))
        uid = procfs.real_uid(pid, self._proc)
        exe = procfs.executable(pid, self._proc)
        if uid == procfs.ROOT_UID and exe.root_owned:
            LOG.debug("dnsmasq %s: pid %d is a helper", self.bridge, pid)
            return
        LOG.warning(
            "dnsmasq %s: ignoring pid %d (uid %s, exe %s): it carries %s "
            "but is not a dnsmasq started by root (%s); it is never "
            "signalled",
            self.bridge,
            pid,
            uid,
            exe.path,
            self._marker,
            problem,
        )

    def _pid_from_file(self) -> int | None:
        try:
            with open(self.paths.pid, encoding="ascii") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def _check_pid_file(self, hint: int | None, ours: int | None) -> None:
        """Say once when the pid file names anything but our dnsmasq:
        INFO for a dead pid, WARNING for a live process (the file belongs
        to dnsmasq's unprivileged user, who can rewrite it)."""
        if hint is None or hint == ours:
            return
        start = procfs.start_time(hint, self._proc)
        if start is None:
            if self._stale != hint:
                self._stale = hint
                LOG.info("dnsmasq %s: pid %d is stale", self.bridge, hint)
            return
        if (hint, start) in self._reported:
            return
        if self.owns(hint):
            self.proven(hint)  # reports it, with the reason
            return
        self._reported.add((hint, start))
        LOG.warning(
            "dnsmasq %s: pid file %s names pid %d (uid %s, exe %s), which "
            "is not this network's dnsmasq; it is never signalled",
            self.bridge,
            self.paths.pid,
            hint,
            procfs.real_uid(hint, self._proc),
            procfs.executable(hint, self._proc).path,
        )

    def _scan(self) -> int | None:
        """A proven dnsmasq carrying our marker, found in /proc."""
        for name in os.listdir(self._proc):
            if name.isdigit() and self.proven(int(name)):
                return int(name)
        return None

    def pid(self) -> int | None:
        """Pid of our running, proven dnsmasq, or None.

        The process proven last is kept while it lives; else the pid
        file is a hint, checked like any process; else /proc is scanned.
        """
        hint = self._pid_from_file()
        found = None
        if self._proven is not None:
            pid, start = self._proven
            if procfs.start_time(pid, self._proc) == start:
                found = pid
        if found is None and hint is not None and self.proven(hint):
            found = hint
        if found is None:
            found = self._scan()
        self._check_pid_file(hint, found)
        return found

    def matches(self, pid: int, argv: Sequence[str]) -> bool:
        """True if ``pid`` runs exactly ``argv`` (cmdline + env prefix)."""
        env, command = split_env(argv)
        if process_cmdline(pid, self._proc) != command:
            return False
        environ = process_environ(pid, self._proc)
        return all(environ.get(key) == env.get(key) for key in _ENV_KEYS)

    def start(self, argv: Sequence[str], timeout: float = 60.0) -> int:
        """Launch ``argv``; return the daemon's pid once it is proven.

        dnsmasq's parent exits after the daemon wrote its pid file (and
        after the ``init`` script ran). Raises DnsmasqError.
        """
        started = time.monotonic()
        command = list(argv)
        if self._netns is not None:
            command = ["ip", "netns", "exec", self._netns, *command]
        with _errors(self.bridge, "start"):
            done = subprocess.run(
                command,
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
        pid = self.pid()
        if pid is None:
            raise exception.DnsmasqError(
                bridge=self.bridge,
                reason="started, but no dnsmasq with a root-created socket "
                f"on port {self._port} carries {self._marker}",
            )
        LOG.info(
            "dnsmasq %s: started pid %d in %.3f s (incl. init)",
            self.bridge,
            pid,
            time.monotonic() - started,
        )
        return pid

    @contextlib.contextmanager
    def _pidfd(self, pid: int, action: str) -> Iterator[int | None]:
        """A pidfd of ``pid`` (None if it is gone), once it is proven: a
        signal sent through it can only reach that process, never a
        recycled pid. Raises DnsmasqError if ``pid`` is not proven."""
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            yield None
            return
        except OSError as exc:
            raise exception.DnsmasqError(
                bridge=self.bridge, reason=f"{action} {pid}: {exc}"
            ) from exc
        try:
            if not self.proven(pid):
                raise exception.DnsmasqError(
                    bridge=self.bridge,
                    reason=f"{action}: pid {pid} is not a proven dnsmasq; "
                    "not signalled",
                )
            with _errors(self.bridge, f"{action} {pid}"):
                yield fd
        finally:
            os.close(fd)

    def reload(self, pid: int) -> None:
        """SIGHUP ``pid``: dnsmasq re-reads its hosts/opts files and runs
        its script with ``old`` for every lease it holds (dnsmasq.c
        async_event: EVENT_RELOAD -> rerun_scripts). Raises DnsmasqError
        if ``pid`` is gone or not proven."""
        with self._pidfd(pid, "HUP") as fd:
            if fd is None:
                raise exception.DnsmasqError(
                    bridge=self.bridge, reason=f"HUP: pid {pid} is gone"
                )
            signal.pidfd_send_signal(fd, signal.SIGHUP)

    def stop(self, pid: int, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` (Neutron's pattern).
        Nothing for a pid that is gone or not proven."""
        if not self.proven(pid):
            return
        with (
            self._pidfd(pid, "stop") as fd,
            contextlib.suppress(ProcessLookupError),
        ):
            if fd is None:
                return
            signal.pidfd_send_signal(fd, signal.SIGTERM)
            if not select.select([fd], [], [], timeout)[0]:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], timeout)

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
