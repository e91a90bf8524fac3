"""flatnet-manage start-up cost: wall time of whole commands.

    .venv/bin/python bench/cli_startup.py [--runs 10] [--bin DIR]

Runs each command ``--runs`` times as a fresh process (after one
warm-up run) against a throwaway SQLite database with one /22 network
and prints min, median and max wall seconds. The goals (issue 8) are
medians: ``--help`` and ``network list`` under 0.3 s, ``instance
create`` under 0.4 s. ``python -c pass`` is the floor.

Each command runs with flatnet's settings cache in the script's own
directory, warm after the warm-up run (``--no-settings-cache``: every
run reads and validates the configuration with oslo.config).

``--instructions`` also counts the instructions each command executes
(once, under ``valgrind --tool=callgrind``; slow, ~30 s a command, but
independent of the machine's load, unlike the times).

``instance create --wait`` needs a network host: as root, the script
starts a real ``flatnet-network`` (bridge, dnsmasq) in a network
namespace of its own and waits on it; otherwise it skips that line.
Everything it creates (namespace, temporary directory, dnsmasq) is
removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import pathlib
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

CONFIG = """[DEFAULT]
host = bench-host
state_path = {state}
flat_network_bridge = brbench
dhcpbridge_flagfile = {conf}
sync_interval = 0.05

[database]
connection = sqlite:///{state}/flatnet.sqlite
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: Sequence[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run of ``argv``."""
    cpu = _cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return elapsed, _cpu() - cpu


def measure(
    label: str, make_argv: Callable[[], Sequence[str]], runs: int
) -> None:
    """Wall and CPU (user + system) seconds: the median, and the range.
    CPU time moves less than wall time on a busy machine."""
    _time(make_argv())  # warm-up: page cache, .pyc files
    runs_ = [_time(make_argv()) for _ in range(runs)]
    wall = sorted(w for w, _ in runs_)
    cpu = sorted(c for _, c in runs_)
    load = os.getloadavg()[0]
    print(
        f"{label:<38} wall median {statistics.median(wall):6.3f} s "
        f"(min {wall[0]:.3f}, max {wall[-1]:.3f}); cpu median "
        f"{statistics.median(cpu):.3f} s; {runs} runs; load {load:.2f}",
        flush=True,
    )


def instructions(label: str, argv: Sequence[str]) -> None:
    """Instructions (user space) of one run of ``argv``, by callgrind."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         *argv],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    refs = [x for x in done.stderr.splitlines() if "I   refs:" in x]
    if done.returncode != 0 or not refs:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    count = int(refs[0].split(":")[1].replace(",", ""))
    print(f"{label:<38} {count / 1e6:8.0f} M instructions", flush=True)


@contextlib.contextmanager
def network_host(
    bindir: pathlib.Path, conf: pathlib.Path
) -> Iterator[str | None]:
    """flatnet-network in a namespace of its own (root only)."""
    if os.geteuid() != 0:
        yield None
        return
    netns = f"fnbench{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    daemon = None
    try:
        subprocess.run(
            ["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"],
            check=True,
        )
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", netns, str(bindir / "flatnet-network"),
             "--config-file", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        yield netns
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=10)
        pids = subprocess.run(
            ["ip", "netns", "pids", netns], capture_output=True, text=True,
            check=False,
        ).stdout.split()  # fmt: skip
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "delete", netns], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions with valgrind (load-independent)",
    )
    parser.add_argument(
        "--bin", type=pathlib.Path, default=pathlib.Path(sys.prefix) / "bin"
    )
    parser.add_argument(
        "--no-settings-cache",
        action="store_true",
        help="every command reads and validates the configuration "
        "(FLATNET_SETTINGS_CACHE=0)",
    )
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="flatnet-bench-cli-"))
    work.chmod(0o755)  # dnsmasq runs as nobody and reads files here
    # the settings cache of the commands measured: in the work directory
    # (warm after each warm-up run, as for an operator's loop)
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    if args.no_settings_cache:
        os.environ["FLATNET_SETTINGS_CACHE"] = "0"
    try:
        _run(args.bin, work, args.runs, args.instructions)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    bindir: pathlib.Path, work: pathlib.Path, runs: int, count: bool
) -> None:
    conf = work / "flatnet.conf"
    state = work / "state"
    state.mkdir(mode=0o755)
    conf.write_text(CONFIG.format(state=state, conf=conf))
    cli = [str(bindir / "flatnet-manage"), "--config-file", str(conf)]
    _time([*cli, "db", "sync"])
    _time([*cli, "network", "create", "--label", "bench",
           "--fixed-range-v4", "10.77.0.0/22"])  # fmt: skip
    names = (f"vm{n}" for n in itertools.count())
    if count:
        _count(cli, names)
    measure("python -c pass", lambda: [sys.executable, "-c", "pass"], runs)
    measure("flatnet-manage --help", lambda: [*cli, "--help"], runs)
    measure("flatnet-manage network list", lambda: [*cli, "network", "list"],
            runs)  # fmt: skip
    measure(
        "flatnet-manage instance create",
        lambda: [*cli, "instance", "create", next(names)],
        runs,
    )
    with network_host(bindir, conf) as netns:
        if netns is None:
            print("instance create --wait: skipped (needs root)")
            return
        _time([*cli, "instance", "create", next(names), "--wait"])
        measure(
            "flatnet-manage instance create --wait",
            lambda: [*cli, "instance", "create", next(names), "--wait"],
            runs,
        )


def _count(cli: list[str], names: Iterator[str]) -> None:
    """Instruction counts: the floor (Python; the libraries a database
    command needs), then the commands."""
    floor = "import sqlalchemy.engine, sqlalchemy.sql, netaddr, sqlite3"
    instructions("python -c pass", [sys.executable, "-c", "pass"])
    instructions("libraries only", [sys.executable, "-c", floor])
    instructions(
        "libraries and oslo.config",
        [sys.executable, "-c", floor + ", oslo_config.cfg"],
    )
    instructions("flatnet-manage --help", [*cli, "--help"])
    instructions("flatnet-manage network list", [*cli, "network", "list"])
    instructions(
        "flatnet-manage instance create", [*cli, "instance", "create",
                                           next(names)],
    )  # fmt: skip


if __name__ == "__main__":
    main()
