"""Benchmark: the compute firewall (plan + ipset + iptables apply).

Runs itself inside a throwaway network namespace (so the executors run
``ipset``/``iptables-restore`` directly, as on a real host, without an
``ip netns exec`` per call). Every figure is plan + ``ipset restore`` +
``iptables-restore --noflush`` + prune, the median of a few runs:

* ``batch``: filters for N instances at once into an empty host
  (goal for 1,000: <= 0.5 s);
* ``+1 at M``: one instance more on a host of M (goal at 5,000: 50 ms);
* ``member``: one member joins a group of 1,000 that 200 instances here
  use as a rule's source; with sets (flatnet) and with nova's one rule
  per member (goal with sets: <= 20 ms);
* ``cut``: the conntrack cut after a member of that group leaves (one
  filter per instance address, nothing to delete): one batch
  (``Conntrack.delete_many``), and for comparison 20 of the filters one
  ``conntrack -D`` each.

Needs root; touches nothing outside its namespace.

    .venv/bin/python -m bench.firewall [--quick]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from flatnet.linux.conntrack import Conntrack
from flatnet.linux.ipset import IpsetBackend
from flatnet.linux.iptables_restore import RestoreBackend
from flatnet.plan import firewall as fw
from flatnet.plan.firewall_flows import flows_to_cut
from flatnet.plan.firewall_model import HostFirewall
from flatnet.service.firewall import cut_filters
from tests.firewall_data import group, host, instance, rule

WEB = group(1, rule("tcp", "80", "0.0.0.0/0"), rule("tcp", "22", source=2))
OPS = group(2, rule("icmp", "8:-1", "10.0.0.0/8"))


def address(n: int, third: int = 0) -> str:
    return f"10.{100 + third}.{n // 250}.{n % 250 + 1}"


def instances(count: int, start: int = 0) -> list:
    return [
        instance(n + 1, address(n), groups=(1, 2) if n % 10 == 0 else (1,),
                 cidr="10.100.0.0/16", dhcp="10.100.0.1")
        for n in range(start, start + count)
    ]  # fmt: skip


class Host:
    """Executors in this namespace plus the last applied state."""

    def __init__(self, settings: fw.FirewallSettings) -> None:
        self.settings = settings
        self.ipsets = IpsetBackend(settings.prefix)
        self.iptables = RestoreBackend("iptables")

    def apply(self, state: HostFirewall) -> None:
        plan = fw.firewall_plan(state, self.settings)
        self.ipsets.ensure(plan.ipsets)
        self.iptables.apply(plan.ruleset)
        self.ipsets.prune(plan.ipsets)

    def clear(self) -> None:
        self.apply(host([], [WEB, OPS]))


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median(runs: list[float]) -> str:
    return f"{statistics.median(runs) * 1000:9.1f} ms"


def bench_batch(count: int, repeat: int) -> str:
    box = Host(fw.FirewallSettings())
    runs = []
    for _ in range(repeat):
        box.clear()
        state = host(instances(count), [WEB, OPS])
        runs.append(timed(lambda s=state: box.apply(s)))
    box.clear()
    return f"batch {count:>6} instances        {median(runs)}"


def bench_plus_one(count: int, repeat: int) -> str:
    box = Host(fw.FirewallSettings())
    base = instances(count)
    box.apply(host(base, [WEB, OPS]))
    runs = []
    for n in range(repeat):
        more = host([*base, *instances(1, count + n)], [WEB, OPS])
        runs.append(timed(lambda s=more: box.apply(s)))
        box.apply(host(base, [WEB, OPS]))
    box.clear()
    return f"+1 at {count:>6} instances        {median(runs)}"


def member_states(members: int, users: int) -> list[HostFirewall]:
    db = group(1, rule("tcp", "5432", source=2))
    app = group(2)
    local = [
        instance(n + 1, address(n), cidr="10.100.0.0/16") for n in range(users)
    ]
    remote = [
        instance(10**6 + n, address(n, 1), groups=(2,), cidr="10.101.0.0/16")
        for n in range(members + 1)
    ]
    return [
        host(local, [db, app], remote=remote[:members]),
        host(local, [db, app], remote=remote),
    ]


def bench_member(sets: bool, repeat: int, users: int = 200) -> list[str]:
    box = Host(fw.FirewallSettings(remote_group_sets=sets))
    before, after = member_states(1000, users)
    box.apply(before)
    runs = []
    for _ in range(repeat):
        runs.append(timed(lambda: box.apply(after)))
        box.apply(before)
    lines = [
        f"member +1, 1000 x {users} users, "
        f"{'sets   ' if sets else 'literal'} {median(runs)}"
    ]
    if sets:
        cuts = flows_to_cut(after, before)
        ct = Conntrack()
        filters = cut_filters(cuts)
        spent = timed(lambda: ct.delete_many(filters))
        lines.append(f"cut  -1 member: {len(filters)} filters, one batch "
                     f"{spent * 1000:9.1f} ms")  # fmt: skip
        single = timed(lambda: [ct.delete(f) for f in filters[:20]])
        lines.append(f"     (one conntrack -D each: 20 filters "
                     f"{single * 1000:9.1f} ms)")  # fmt: skip
    box.clear()
    return lines


def inner(quick: bool) -> None:
    print(f"load average {os.getloadavg()}", flush=True)
    repeat = 3 if quick else 5
    print(bench_batch(1000, repeat), flush=True)
    print(bench_plus_one(1000, repeat), flush=True)
    print(bench_plus_one(5000, repeat), flush=True)
    for line in bench_member(True, repeat):
        print(line, flush=True)
    for line in bench_member(False, 2 if quick else 3):
        print(line, flush=True)
    print(f"load average {os.getloadavg()}", flush=True)


def main(argv: list[str]) -> int:
    if "--inner" in argv:
        inner("--quick" in argv)
        return 0
    ns = f"fntbenchfw{uuid.uuid4().hex[:4]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cmd = [sys.executable, "-m", "bench.firewall", "--inner", *argv]
        return subprocess.run(
            ["ip", "netns", "exec", ns, *cmd], check=False
        ).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
