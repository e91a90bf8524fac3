"""FakeDnsmasq / FakeRelease: in-memory executors recording state.

FakeDnsmasq models what flatnet relies on from dnsmasq: on start and
SIGHUP it loads the hosts file plus every hostsdir file; between HUPs
it only ADDS hostsdir files it has not seen (inotify), it never forgets
one. ``loaded`` is therefore what a real dnsmasq would serve.
Also: builders for a real SQLite database with one network.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import netaddr

from flatnet.db import api as db_api
from flatnet.ipam import network_layout
from flatnet.model import Network
from flatnet.plan.dnsmasq import DnsmasqPaths


@dataclasses.dataclass
class FakeProcessTable:
    """Pids of all fake dnsmasqs (shared, so 'kill' can be simulated)."""

    running: dict[int, list[str]] = dataclasses.field(default_factory=dict)
    next_pid: int = 1000


class FakeDnsmasq:
    def __init__(
        self, bridge: str, paths: DnsmasqPaths, table: FakeProcessTable
    ) -> None:
        self.bridge = bridge
        self.paths = paths
        self.table = table
        self.my_pid: int | None = None
        self.loaded: dict[str, str] = {}
        self.reloads = 0
        self.starts = 0
        self.stops = 0

    def _read(self, path: str) -> list[str]:
        try:
            with open(path) as handle:
                return [x for x in handle.read().splitlines() if x]
        except FileNotFoundError:
            return []

    def _hostsdir(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.paths.hostsdir))
        except FileNotFoundError:
            return []
        lines: list[str] = []
        for name in names:
            if not name.startswith("."):
                lines += self._read(os.path.join(self.paths.hostsdir, name))
        return lines

    def _load_all(self) -> None:
        lines = self._read(self.paths.hosts) + self._hostsdir()
        self.loaded = {x.split(",")[0]: x for x in lines}

    # --- DnsmasqBackend -------------------------------------------------
    def pid(self) -> int | None:
        if self.my_pid in self.table.running:
            return self.my_pid
        return None

    def matches(self, pid: int, argv: list[str]) -> bool:
        return self.table.running.get(pid) == list(argv)

    def start(self, argv: list[str]) -> int:
        self.table.next_pid += 1
        self.my_pid = self.table.next_pid
        self.table.running[self.my_pid] = list(argv)
        self.starts += 1
        self._load_all()
        return self.my_pid

    def reload(self, pid: int) -> None:
        assert pid == self.my_pid
        self.reloads += 1
        self._load_all()

    def stop(self, pid: int) -> None:
        self.table.running.pop(pid, None)
        self.stops += 1

    def wait_served(self, listen: str, timeout: float) -> bool:
        if self.pid() is None:
            return False
        for line in self._hostsdir():  # inotify: additions only
            self.loaded.setdefault(line.split(",")[0], line)
        return True

    # --- test helpers ---------------------------------------------------
    def kill(self) -> None:
        assert self.my_pid is not None
        self.table.running.pop(self.my_pid, None)


class FakeRelease:
    """Records releases; ``dnsmasq_events`` says if dnsmasq would answer
    with a 'del' event (written into the journal by the test)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def release(
        self, device: str, address: netaddr.IPAddress, mac: netaddr.EUI
    ) -> bool:
        mac_text = str(netaddr.EUI(mac, dialect=netaddr.mac_unix_expanded))
        self.sent.append((device, str(address), mac_text))
        return True


def new_db(tmp_path: os.PathLike[str] | str) -> db_api.Database:
    db = db_api.Database(f"sqlite:///{tmp_path}/flatnet.sqlite")
    db_api.sync(db)
    return db


def new_network(
    db: db_api.Database,
    cidr: str = "10.210.0.0/24",
    bridge: str = "br100",
    **extra: object,
) -> Network:
    layout = network_layout(cidr)
    return db_api.network_create(
        db, layout, label="private", bridge=bridge, **extra
    )


def new_instance(
    db: db_api.Database,
    network: Network,
    name: str,
    mac: str,
    host: str = "nethost",
) -> Sequence[object]:
    spec = db_api.InstanceSpec(hostname=name, display_name=name, host=host)
    request = db_api.VifRequest(network_id=network.id, mac=netaddr.EUI(mac))
    return db_api.instance_create_allocated(db, spec, [request])
