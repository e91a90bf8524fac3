"""Benchmark: apply time of the network host's rules per backend.

For each backend (iptables-restore on nf_tables, iptables-restore on
legacy, python-iptables) and N floating IPs (5 nat rules each, plus the
host rules of one network), in a throwaway netns:

* ``full``: first apply into empty tables (reads, then loads all);
* ``+1``: one more floating IP (delta from the backend's cache);
* ``-1``: one floating IP less (delta: five ``-D`` by spec);
* ``+100``: a batch of 100 more in one apply (one commit per table);
* ``no-op``: apply of an equal RuleSet (the cache says nothing changed);
* ``verify``: ``apply(verify=True)``, the periodic drift check: re-read
  every table, full plan, nothing to commit;
* ``build``: host_ruleset() in Python, which every sync pays first.

A second table runs a compute-style RuleSet through the same generic
builder (nova-compute prefix, ``sg-fallback``, one ``inst-<id>`` chain of
nine rules per instance dispatched from ``local``; a preview for the
compute firewall, not the firewall itself), N instances:

* ``build``: RuleSetBuilder for N instances;
* ``batch``: apply of N instances into the empty skeleton (one commit);
* ``+1``: one more instance (a new chain and one dispatch rule);
* ``touch-all``: a rule added to every instance chain (one commit);
* ``-1``: one instance removed from the middle.

Needs root; touches nothing outside its own namespaces.

    .venv/bin/python -m bench.iptables [N ...] [--instances M ...]
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
from flatnet.plan.iptables import (
    NOVA_SKELETON,
    RuleSet,
    RuleSetBuilder,
    SkeletonRule,
)

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
COLUMNS = ("full", "+1", "-1", "+100", "no-op", "verify", "build")


def floating(count: int, skip: int = -1) -> list[FloatingIp]:
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
        if i != skip
    ]


def ruleset(count: int, skip: int = -1) -> RuleSet:
    return host_ruleset([NET], floating(count, skip), SETTINGS)


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
    """One figure per COLUMNS entry, in order."""
    full, more = ruleset(count), ruleset(count + 1)
    less, batch = ruleset(count + 1, skip=count // 2), ruleset(count + 101)
    same = ruleset(count + 101)  # equal to batch, not the same object
    with Namespace() as ns:
        backend = BACKENDS[kind](ns)
        yield timed(lambda: backend.apply(full))
        yield timed(lambda: backend.apply(more))
        yield timed(lambda: backend.apply(less))
        yield timed(lambda: backend.apply(batch))
        yield timed(lambda: backend.apply(same))
        yield timed(lambda: backend.apply(batch, verify=True))
        assert backend.apply(batch, verify=True) == []
    yield timed(lambda: ruleset(count))


COMPUTE = NOVA_SKELETON.extended(
    chains={"filter": ("sg-fallback",)},
    rules=(SkeletonRule("filter", "sg-fallback", "-j DROP"),),
)
INSTANCE_RULES = (
    "-m state --state INVALID -j DROP",
    "-m state --state ESTABLISHED,RELATED -j ACCEPT",
    "-s 10.0.0.1 -p udp --sport 67 --dport 68 -j ACCEPT",
    "-s 10.0.0.0/16 -j ACCEPT",
    "-j ACCEPT -p tcp --dport 80 -s 0.0.0.0/0",
    "-j ACCEPT -p tcp -m multiport --dports 8000:8080 -s 10.1.0.0/16",
    "-j ACCEPT -p icmp -m icmp --icmp-type 8/0 -s 0.0.0.0/0",
)
COMPUTE_COLUMNS = ("build", "batch", "+1", "touch-all", "-1")


def compute_ruleset(
    count: int, skip: int = -1, extra: tuple[str, ...] = ()
) -> RuleSet:
    b = RuleSetBuilder("nova-compute", COMPUTE)
    for n in range(count):
        if n == skip:
            continue
        chain = f"inst-{n}"
        b.add_chain("filter", chain)
        b.add("filter", "local", f"-d {netaddr.IPAddress(0x0A000000 + n + 2)} "
              f"-j ${chain}")  # fmt: skip
        for rule in (*INSTANCE_RULES, *extra):
            b.add("filter", chain, rule)
        b.add("filter", chain, "-j $sg-fallback")
    return b.build()


def measure_compute(kind: str, count: int) -> Iterator[float]:
    """One figure per COMPUTE_COLUMNS entry, in order."""
    start = time.perf_counter()
    batch = compute_ruleset(count)
    yield time.perf_counter() - start
    more = compute_ruleset(count + 1)
    touched = compute_ruleset(
        count + 1, extra=("-j ACCEPT -p udp --dport 53",)
    )
    less = compute_ruleset(
        count + 1, count // 2, ("-j ACCEPT -p udp --dport 53",)
    )
    with Namespace() as ns:
        backend = BACKENDS[kind](ns)
        backend.apply(compute_ruleset(0))
        yield timed(lambda: backend.apply(batch))
        yield timed(lambda: backend.apply(more))
        yield timed(lambda: backend.apply(touched))
        yield timed(lambda: backend.apply(less))
        assert backend.apply(less, verify=True) == []


def main(argv: Sequence[str]) -> None:
    args = list(argv)
    split = args.index("--instances") if "--instances" in args else len(args)
    counts = [int(a) for a in args[:split]] or [0, 1000, 5000, 9000]
    instances = [int(a) for a in args[split + 1 :]] or [1000, 5000]
    head = " ".join(f"{c + ' s':>8}" for c in COLUMNS)
    print(f"{'backend':<15} {'floats':>6} {'rules':>6} {head}")
    for count in counts:
        rules = rule_count(ruleset(count))
        for kind in BACKENDS:
            cells = " ".join(f"{t:>8.3f}" for t in measure(kind, count))
            print(f"{kind:<15} {count:>6} {rules:>6} {cells}", flush=True)
    head = " ".join(f"{c + ' s':>11}" for c in COMPUTE_COLUMNS)
    print(f"\ncompute-style\n{'backend':<15} {'inst':>6} {'rules':>6} {head}")
    for count in instances:
        rules = rule_count(compute_ruleset(count))
        for kind in BACKENDS:
            cells = " ".join(
                f"{t:>11.3f}" for t in measure_compute(kind, count)
            )
            print(f"{kind:<15} {count:>6} {rules:>6} {cells}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
