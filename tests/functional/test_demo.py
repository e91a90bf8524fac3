"""`make demo` end to end, in both forms, and its cleanup.

The VM form (what `make demo` runs here): flatnet-network in the
network and compute roles, flatnet-metadata, three libvirt domains
booted with flatnet's interface XML and nwfilters, DHCP leases,
instance-ids from 169.254.169.254, a security group tried from outside
and a spoofing guest dropped. The namespace form (`make demo NO_VM=1`):
the same deployment with namespaces, udhcpc and an HTTP client. After
each run, and after a SIGINT in the middle of one, nothing the demo made
is left: namespaces, the root-namespace bridge and its guard rules,
domains, nwfilters, processes, the work folder.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.functional import vm

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = [sys.executable, str(ROOT / "demo" / "run.py")]


@pytest.fixture(scope="module")
def conn():
    """libvirtd up before the demo runs (so the demo does not stop it)."""
    try:
        return vm.connection()
    except vm.VmUnavailable as exc:
        pytest.skip(f"no VM demo: {exc}")


def _table(out: str) -> dict[str, list[str]]:
    """instance -> [MAC, fixed IP, lease IP, lease s, metadata, filter]."""
    rows = {}
    for line in out.splitlines():
        if re.match(r"^vm\d +fa:16:3e", line):
            name, *rest = line.split(None, 6)
            rows[name] = rest
    return rows


def _nwfilters(conn) -> set[str]:
    return {f.name() for f in conn.listAllNWFilters()}


def _leftovers(out: str, pid: int, conn) -> list[str]:
    """What of this demo run still exists (from names in its output)."""
    found = []
    tag = re.search(r"sandbox (\w+):", out)
    if tag:
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True,
                               text=True, check=True).stdout  # fmt: skip
        found += re.findall(rf"^fn{tag[1]}-\S+", netns, re.M)
    workdir = re.search(r"(/tmp/flatnet-demo-\w+)", out)
    if workdir:
        if pathlib.Path(workdir[1]).exists():
            found.append(workdir[1])
        for proc in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if workdir[1].encode() in proc.read_bytes():
                    found.append(f"process {proc.parent.name}")
            except OSError:
                continue
    bridge = re.search(r"root-namespace bridge (\S+)", out)
    if bridge and pathlib.Path(f"/sys/class/net/{bridge[1]}").exists():
        found.append(f"bridge {bridge[1]}")
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    found += [r for r in rules.splitlines() if f'pid={pid}"' in r]
    if conn is not None:
        found += [d.name() for d in conn.listAllDomains()
                  if d.name().startswith(f"fntvm-{pid}-")]  # fmt: skip
    return found


def test_demo_boots_real_vms(conn) -> None:
    before = _nwfilters(conn)
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-4000:]
    lines = out.splitlines()
    assert lines[-1].startswith("demo succeeded in "), out[-3000:]
    assert "allocate_for_instance" in out
    assert '<filterref filter="nova-instance-instance-' in out
    table = _table(out)
    assert sorted(table) == ["vm1", "vm2", "vm3"], out[-3000:]
    for name, (_mac, fixed, leased, secs, md, _flt) in table.items():
        assert leased == fixed, name
        assert secs == "120", name
        assert re.fullmatch(r"i-[0-9a-f]{8}", md), (name, md)
    assert "seen as 172.24.4.1" in table["vm1"][5]
    assert "tcp/80 passes, tcp/81 dropped" in table["vm2"][5]
    assert re.search(r"IP \S+: 0 pkts, spoofed MAC: 0 pkts -> dropped; "
                     r"own ping [1-9]", table["vm3"][5])  # fmt: skip
    assert _leftovers(out, proc.pid, conn) == []
    assert _nwfilters(conn) <= before


@pytest.mark.parametrize("how", [["--no-vm"], []], ids=["flag", "env"])
def test_demo_without_vms(how: list[str]) -> None:
    env = dict(os.environ, NO_VM="" if how else "1")
    done = subprocess.run(
        [*DEMO, *how], capture_output=True, text=True, timeout=300,
        check=False, env=env,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    assert "NO_VM: instances are network namespaces" in out
    assert "flatnet-network (network, compute)" in out
    table = _table(out)
    assert sorted(table) == ["vm1", "vm2", "vm3"], out[-3000:]
    for name, (_mac, fixed, leased, _s, md, flt) in table.items():
        assert leased == fixed, name
        assert re.fullmatch(r"i-[0-9a-f]{8}", md), (name, md)
        assert flt == "tcp/80 passes, tcp/81 dropped", (name, flt)
    assert "after repair: metadata works" in out
    assert _leftovers(out, 0, None) == []


def test_sigint_mid_run_leaves_nothing(conn) -> None:
    before = _nwfilters(conn)
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        seen.append(line)
        if re.search(r"vm3: domain fntvm-\S+ started", line):
            break  # three domains run, filters and services are live
        assert time.monotonic() < deadline, "".join(seen)
    assert pathlib.Path("/tmp").glob("flatnet-demo-*")
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    out = "".join(seen) + rest
    assert "demo interrupted (SIGINT)" in out, out[-3000:]
    assert proc.returncode == 1
    assert out.splitlines()[-1].startswith("demo FAILED"), out[-2000:]
    assert _leftovers(out, proc.pid, conn) == [], out[-3000:]
    assert _nwfilters(conn) <= before


def test_sigkill_mid_run_is_swept_by_the_next_run(conn) -> None:
    """kill -9 leaves everything; what the next run sweeps at its start
    (demo/sandbox.py sweep_dead_runs, the VM harness's sweep_leftovers)
    removes it all; the next run's service prunes the instance
    nwfilters, which a killed run cannot undefine (removed here)."""
    sys.path.insert(0, str(ROOT / "demo"))
    import sandbox  # noqa: PLC0415

    before = _nwfilters(conn)
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(r"vm3: domain fntvm-\S+ started", line):
            break
    proc.kill()
    proc.wait(30)
    proc.stdout.close()
    out = "".join(seen)
    left = _leftovers(out, proc.pid, conn)
    assert any(x.startswith(f"fnd{proc.pid}-") for x in left), left
    assert any(x.startswith("bridge ") for x in left), left
    assert any(x.startswith(f"fntvm-{proc.pid}-") for x in left), left
    removed = sandbox.sweep_dead_runs()
    vm.sweep_leftovers(conn)
    assert any(r.startswith(f"fnd{proc.pid}-") for r in removed)
    deadline = time.monotonic() + 30
    while _leftovers(out, proc.pid, conn) and time.monotonic() < deadline:
        time.sleep(0.2)  # libvirt destroys asynchronously
    assert _leftovers(out, proc.pid, conn) == []
    for name in sorted(
        _nwfilters(conn) - before, key=lambda n: "instance" not in n
    ):
        conn.nwfilterLookupByName(name).undefine()
