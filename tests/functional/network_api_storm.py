"""Run by test_network_api_eventlet in a fresh interpreter (so that
monkey-patching never reaches the test process): N threads (green
threads when monkey-patched) allocate at once through NetworkAPI while
a heartbeat thread ticks every 10 ms and a host service (a thread too)
records readiness like flatnet-network. Prints one JSON line.

usage: network_api_storm.py MODE DB_URL [N] [BLOCK_MS]
MODE: threads (no eventlet), eventlet (monkey-patched, tpool executor),
eventlet-direct (monkey-patched, database calls in the hub: the control)
BLOCK_MS: each of the host service's passes also blocks its OS thread
that long in native code (a slow or locked database), through the
executor like any database call
"""

from __future__ import annotations

import json
import sys

MODE, URL = sys.argv[1], sys.argv[2]
COUNT = int(sys.argv[3]) if len(sys.argv) > 3 else 50
BLOCK = float(sys.argv[4]) / 1000 if len(sys.argv) > 4 else 0.0
if MODE.startswith("eventlet"):
    import eventlet

    native_sleep = eventlet.patcher.original("time").sleep
    eventlet.monkey_patch()
else:
    import time as _time

    native_sleep = _time.sleep

import threading  # noqa: E402 - after monkey-patching, on purpose
import time  # noqa: E402
from typing import Any  # noqa: E402

from flatnet.db import api  # noqa: E402
from flatnet.service import network_api  # noqa: E402
from flatnet.service.manager import FlatDHCPManager  # noqa: E402
from tests.host_service import HostService  # noqa: E402

TICK = 0.01


def main() -> None:
    executor: Any = network_api.direct
    if MODE == "eventlet":
        from flatnet.cmd import eventlet_support  # noqa: PLC0415

        executor = eventlet_support.tpool_executor()
    db = api.Database(URL)
    nova = network_api.NetworkAPI(
        FlatDHCPManager(db), "c1", interval=0.02, timeout=60.0,
        executor=executor,
    )  # fmt: skip
    done = threading.Event()
    late: list[float] = []

    def heartbeat() -> None:
        while not done.is_set():
            start = time.monotonic()
            time.sleep(TICK)
            late.append(time.monotonic() - start - TICK)

    results: list[str] = []
    errors: list[str] = []

    def boot(i: int) -> None:
        try:
            infos = nova.allocate_for_instance(f"vm{i}")
            results.append(
                infos[0]["network"]["subnets"][0]["ips"][0]["address"]
            )
        except Exception as exc:  # noqa: BLE001 - reported, counted
            errors.append(f"vm{i}: {type(exc).__name__}: {exc}")

    beat = threading.Thread(target=heartbeat)
    beat.start()
    time.sleep(0.1)  # the heartbeat runs before the storm

    def service_executor(fn: Any, *args: Any) -> Any:
        def blocking(*inner: Any) -> Any:
            native_sleep(BLOCK)
            return fn(*inner)

        return executor(blocking, *args) if BLOCK else executor(fn, *args)

    service = HostService(
        db, "c1", interval=0.02, executor=service_executor
    ).start()
    started = time.monotonic()
    boots = [threading.Thread(target=boot, args=(i,)) for i in range(COUNT)]
    for t in boots:
        t.start()
    for t in boots:
        t.join()
    elapsed = time.monotonic() - started
    done.set()
    beat.join()
    service.stop()
    print(json.dumps({
        "mode": MODE,
        "allocated": len(results),
        "distinct_ips": len(set(results)),
        "errors": errors[:5],
        "ticks": len(late),
        "max_late_ms": round(max(late) * 1000, 1),
        "p99_late_ms": round(sorted(late)[int(len(late) * 0.99)] * 1000, 1),
        "seconds": round(elapsed, 2),
    }))  # fmt: skip


main()
