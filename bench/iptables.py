"""Benchmark: apply time of the network host's rules per backend.

For each backend (iptables-restore on nf_tables, iptables-restore on
legacy, python-iptables) and N floating IPs (5 nat rules each, plus the
host rules of one network): a full apply into an empty throwaway netns,
an incremental apply (N+1 floating IPs), and a no-op sync (read + diff).
Needs root; touches nothing outside its own namespaces.

    .venv/bin/python -m bench.iptables [N ...]
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import netaddr

from flatnet.linux.iptables import IptablesBackend
from flatnet.linux.iptables_iptc import IptcBackend
from flatnet.linux.iptables_restore import RestoreBackend
from flatnet.model import FloatingIp, Network
from flatnet.plan.host_rules import HostRulesSettings, host_ruleset
from flatnet.plan.iptables import RuleSet, plan_ruleset

SETTINGS = HostRulesSettings(
    public_interface="eth1",
    routing_source_ip="172.31.0.1",
    metadata_host="172.31.0.1",
)
NET = Network(
    id=1,
    uuid="u",
    label="bench",
    cidr=netaddr.IPNetwork("10.0.0.0/16"),
    gateway=netaddr.IPAddress("10.0.0.1"),
    dhcp_server=netaddr.IPAddress("10.0.0.1"),
    dhcp_start=None,
    broadcast=netaddr.IPAddress("10.0.255.255"),
    netmask=netaddr.IPAddress("255.255.0.0"),
    bridge="br100",
    bridge_interface=None,
)
BACKENDS: dict[str, Callable[[str], IptablesBackend]] = {
    "restore/nft": lambda ns: RestoreBackend("iptables", netns=ns),
    "restore/legacy": lambda ns: RestoreBackend("iptables-legacy", netns=ns),
    "iptc/legacy": lambda ns: IptcBackend(netns=ns),
}


def floating(count: int) -> list[FloatingIp]:
    first_float = int(netaddr.IPAddress("172.30.0.10"))
    first_fixed = int(netaddr.IPAddress("10.0.1.0"))
    return [
        FloatingIp(
            id=i,
            address=netaddr.IPAddress(first_float + i),
            pool="nova",
            interface="eth1",
            fixed_address=netaddr.IPAddress(first_fixed + i),
        )
        for i in range(count)
    ]


def ruleset(count: int) -> RuleSet:
    return host_ruleset([NET], floating(count), SETTINGS)


def rule_count(rs: RuleSet) -> int:
    return sum(len(c.rules) for t in rs.tables.values() for c in t.chains)


class Namespace:
    def __init__(self) -> None:
        self.name = f"fntbench{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> str:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self.name

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def measure(kind: str, count: int) -> Iterator[float]:
    full, more = ruleset(count), ruleset(count + 1)
    with Namespace() as ns:
        backend = BACKENDS[kind](ns)
        yield timed(lambda: backend.apply(full))
        yield timed(lambda: backend.apply(more))
        yield timed(lambda: plan_ruleset(more, backend.read()))
        assert backend.apply(more) == []


def main(argv: Sequence[str]) -> None:
    counts = [int(a) for a in argv] or [0, 1000, 5000, 9000]
    print(
        f"{'backend':<15} {'floats':>6} {'rules':>6} {'full s':>8} "
        f"{'+1 float s':>10} {'no-op sync s':>12}"
    )
    for count in counts:
        rules = rule_count(ruleset(count))
        for kind in BACKENDS:
            full, incr, noop = measure(kind, count)
            print(
                f"{kind:<15} {count:>6} {rules:>6} {full:>8.3f} "
                f"{incr:>10.3f} {noop:>12.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
