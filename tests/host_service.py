"""A stand-in for flatnet-network that records readiness like the
daemon does, for tests of the compute-driver API above the executors.

Each pass reads the generations FIRST, then the state they cover, and
records them in host_state (component ``dhcp``, key ``network:<id>``
for every network this host serves DHCP for; component ``firewall``,
keys ``instance:<uuid>`` of the instances placed here and
``host:<name>``), as service.daemon + the dhcp and firewall reconcilers
do after a successful apply. ``hold`` pauses it (a host that is slow or
down); ``error`` is recorded as the keys' last_error instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flatnet.db import api
from flatnet.service.firewall_driver import host_key

Executor = Callable[..., Any]


def _direct(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


class _Hold:
    """``set()`` returns once no pass is in flight, so nothing written
    after it is applied until ``clear()`` (a bare Event let a pass that
    had started before read, and record, the test's next write)."""

    def __init__(self, passing: threading.Lock) -> None:
        self._event = threading.Event()
        self._passing = passing

    def set(self) -> None:
        self._event.set()
        with self._passing:
            pass

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()


class HostService:
    """``roles``: "network" (DHCP for the networks whose host is this
    one, or every network when ``all_networks``) and/or "compute"."""

    def __init__(  # noqa: PLR0913
        self,
        db: api.Database,
        host: str,
        roles: tuple[str, ...] = ("network", "compute"),
        *,
        all_networks: bool = True,
        interval: float = 0.01,
        executor: Executor = _direct,
    ) -> None:
        self.db, self.host, self.roles = db, host, roles
        self.all_networks, self.interval = all_networks, interval
        self.execute = executor
        self._passing = threading.Lock()
        self.hold = _Hold(self._passing)
        self.error: str | None = None
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        with self._passing:
            if self.hold.is_set():
                return
            if "network" in self.roles:
                self.execute(self._dhcp)
            if "compute" in self.roles:
                self.execute(self._firewall)
            self.passes += 1

    def _record(self, component: str, keys: dict[str, int]) -> None:
        if self.error is not None:
            errors = dict.fromkeys(keys, self.error)
            api.host_state_record(self.db, self.host, component, errors=errors)
        else:
            api.host_state_record(self.db, self.host, component, keys)

    def _dhcp(self) -> None:
        generations = api.network_generations(self.db)
        mine = {
            n.id
            for n in api.network_list(self.db)
            if self.all_networks or n.host == self.host
        }
        keys = {
            api.network_key(nid): gen
            for nid, gen in generations.items()
            if nid in mine
        }
        self._record("dhcp", keys)

    def _firewall(self) -> None:
        generation = api.firewall_generation(self.db)
        keys = {
            api.instance_key(uuid): generation
            for uuid in api.host_instances(self.db, self.host)
        }
        keys[host_key(self.host)] = generation
        self._record("firewall", keys)

    # --- as a thread ------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            time.sleep(self.interval)

    def start(self) -> HostService:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> HostService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
