"""Safe under eventlet: 50 concurrent allocations through NetworkAPI
never stall a monkey-patched hub (a heartbeat ticking every 10 ms is
never late by more than 100 ms), and the same script passes with plain
threads. With the host service's database calls blocking 150 ms in
native code (a locked database), the tpool executor keeps the hub
ticking, and the control (the same calls made in the hub) stalls it.
Each run is a fresh interpreter (network_api_storm.py), so
monkey-patching never reaches this process."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from flatnet.db import api
from tests.db.conftest import make_network

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = pathlib.Path(__file__).with_name("network_api_storm.py")
COUNT = 50


def _storm(tmp_path: pathlib.Path, mode: str, block_ms: int) -> dict:
    # find_spec, not importorskip: importing eventlet here would register
    # its fork warning in this process, and later tests fork (pyroute2)
    if (
        mode.startswith("eventlet")
        and importlib.util.find_spec("eventlet") is None
    ):
        pytest.skip("eventlet is not installed")
    url = f"sqlite:///{tmp_path}/flatnet.sqlite"
    db = api.Database(url, create=True)
    api.sync(db)
    make_network(db)
    db.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [
            sys.executable, "-W", "ignore", str(SCRIPT), mode, url,
            str(COUNT), str(block_ms),
        ],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["allocated"] == COUNT
    assert result["distinct_ips"] == COUNT
    assert result["ticks"] > 0
    # every instance is in the database, each with its own address
    db = api.Database(url)
    try:
        assert len(api.instance_list(db, host="c1")) == COUNT
    finally:
        db.dispose()
    return result


@pytest.mark.parametrize(
    ("mode", "block_ms"),
    [("threads", 0), ("eventlet", 0), ("threads", 150), ("eventlet", 150)],
)
def test_fifty_allocations_never_stall_the_heartbeat(
    mode, block_ms, tmp_path
) -> None:
    result = _storm(tmp_path, mode, block_ms)
    assert result["max_late_ms"] <= 100.0, result


def test_control_blocking_calls_in_the_hub_stall_it(tmp_path) -> None:
    """Without the executor (database calls made in the hub), a 150 ms
    native call stalls every greenthread: the heartbeat sees it."""
    result = _storm(tmp_path, "eventlet-direct", 150)
    assert result["max_late_ms"] > 100.0, result
