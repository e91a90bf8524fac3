"""`make demo` end to end: the CLI, flatnet-network, dnsmasq, real DHCP
clients, the metadata DNAT, SNAT and a floating IP, together."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.root
@pytest.mark.slow
def test_demo_succeeds() -> None:
    before = set(pathlib.Path("/tmp").glob("flatnet-demo-*"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "run.py")],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[-2] == "demo succeeded"
    assert set(pathlib.Path("/tmp").glob("flatnet-demo-*")) <= before
    rows = [line.split() for line in lines if line.startswith("vm")]
    table = [r for r in rows if len(r) == 8]
    assert [r[0] for r in table] == ["vm1", "vm2", "vm3"]
    for name, _mac, fixed, leased, _secs, metadata, _fl, _seen in table:
        assert leased == fixed, name
        assert metadata == "ok", name
