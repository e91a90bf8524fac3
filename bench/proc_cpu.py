"""Where the CPU goes during a benchmark phase, per process class
(proc(5) ``/proc/<pid>/stat`` utime + stime, and ``/proc/stat`` for the
whole machine). Prints figures for the benchmarks; no assertions."""

from __future__ import annotations

import os
import pathlib
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

TICK = os.sysconf("SC_CLK_TCK")


def ticks(path: str) -> int:
    """utime + stime of a ``.../stat`` file (0 if gone)."""
    try:
        text = pathlib.Path(path).read_text()
    except OSError:
        return 0
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs (/proc/stat line 1)."""
    first = pathlib.Path("/proc/stat").read_text().split("\n", 1)[0]
    # user nice system idle iowait irq softirq steal (guest is in user)
    fields = [int(f) for f in first.split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def snapshot(classes: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Ticks per class; each class is a list of stat file paths."""
    found = {
        name: sum(ticks(p) for p in paths) for name, paths in classes.items()
    }
    busy, total = machine()
    found["(machine busy)"], found["(machine total)"] = busy, total
    found["(clock)"] = int(time.monotonic() * TICK)
    return found


def report(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """One line: CPU seconds and share of the machine per class between
    two snapshots."""
    cores = os.cpu_count() or 1
    seconds = (after["(clock)"] - before["(clock)"]) / TICK
    parts = []
    for name in before:
        if name in ("(machine total)", "(clock)"):
            continue
        used = (after[name] - before[name]) / TICK
        share = 100 * used / (seconds * cores) if seconds else 0.0
        parts.append(f"{name} {used:.2f} s ({share:.0f}%)")
    return f"CPU over {seconds:.2f} s on {cores} cores: " + ", ".join(parts)


def perf_record(
    output: str | None, seconds: float
) -> subprocess.Popen[bytes] | None:
    """``perf record -a -g`` of the whole machine for ``seconds`` into
    ``output`` (BENCH_PERF=<file>), or None when not asked for."""
    if not output:
        return None
    argv = [
        "perf",
        "record",
        "-a",
        "-g",
        "-o",
        output,
        "--",
        "sleep",
        str(seconds),
    ]
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def children(pids: set[int]) -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) in pids:
            found.add(int(name))
    return found


def rss_kib(pid: int) -> int:
    try:
        for line in (
            pathlib.Path(f"/proc/{pid}/status").read_text().splitlines()
        ):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class AddCounter:
    """``add`` records appended to the journals since it was made,
    reading only what is new (the sampler runs every 20 ms beside the
    storm: its cost must stay small). A journal rotated meanwhile is
    counted from the start of its new inode."""

    def __init__(self, networks: pathlib.Path) -> None:
        self.networks = networks
        self.seen: dict[str, tuple[int, int]] = {}
        self.count = 0
        self.more()
        self.count = 0

    def more(self) -> int:
        for path in self.networks.glob("*.events"):
            key = str(path)
            with path.open("rb") as handle:
                inode = os.fstat(handle.fileno()).st_ino
                known, offset = self.seen.get(key, (inode, 0))
                handle.seek(offset if known == inode else 0)
                data = handle.read()
            cut = data.rfind(b"\n") + 1
            self.count += data[:cut].count(b"\nadd ")
            base = offset if known == inode else 0
            self.seen[key] = (inode, base + cut - (1 if cut else 0))
        return self.count


def timeline(samples: Sequence[tuple[float, int, int]], t0: float) -> str:
    """``(time, journalled, recorded)`` samples, one every 0.5 s."""
    line, step = [], 0.0
    for t, journalled, recorded in samples:
        if t - t0 >= step:
            line.append(f"{t - t0:.1f}s j{journalled}/db{recorded}")
            step += 0.5
    return ", ".join(line)


def classes(
    servers: set[int], thread: threading.Thread
) -> dict[str, list[str]]:
    """The stat files of each process class of a DHCP storm: dnsmasq
    servers, their script helpers, the daemon loop's thread and the
    bench's own (calling) thread."""
    return {
        "dnsmasq": [f"/proc/{p}/stat" for p in servers],
        "helpers": [f"/proc/{p}/stat" for p in children(servers)],
        "daemon loop": [f"/proc/self/task/{thread.native_id}/stat"],
        "bench": [f"/proc/self/task/{threading.get_native_id()}/stat"],
    }
