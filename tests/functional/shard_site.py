"""A sharded DHCP test site: a "network host" namespace with a bridge
and the gateway address, :class:`ShardedDhcp` driven from the test
process (shards in namespaces of their own, real dnsmasq), and instance
namespaces running busybox udhcpc.

Shard namespaces are ``fn-<bridge>-s<k>`` where the bridge name comes
from ``netns.unique_name``; the site removes them, their veths and the
nft table (inside the host namespace, deleted with it) afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess

import netaddr

from flatnet.linux import netlink
from flatnet.model import DhcpShard, HostEntry, Lease, Network
from flatnet.plan import dhcp_hook
from flatnet.plan import dnsmasq as plan
from flatnet.service.dhcp_keeper import DhcpTuning, DnsmasqKeeper
from flatnet.service.dhcp_shards import ShardedDhcp
from tests.functional import netns
from tests.functional.dhcp_site import wait_for

SCRIPT = """#!/bin/sh
echo "$1 ip=$ip serverid=$serverid router=$router dns=$dns" >> "$UDHCPC_LOG"
case "$1" in
bound|renew) ip addr flush dev "$interface"
             ip addr add "$ip/$mask" dev "$interface" ;;
deconfig|nak) ip addr flush dev "$interface" ;;
esac
"""
CIDR = netaddr.IPNetwork("10.77.0.0/24")
GATEWAY = "10.77.0.1"


def network(bridge: str) -> Network:
    return Network(
        id=7,
        uuid="u7",
        label="big",
        cidr=CIDR,
        gateway=netaddr.IPAddress(GATEWAY),
        dhcp_server=netaddr.IPAddress(GATEWAY),
        dhcp_start=netaddr.IPAddress("10.77.0.2"),
        broadcast=CIDR.broadcast,
        netmask=CIDR.netmask,
        bridge=bridge,
        bridge_interface=None,
    )


def entry(last: int, shard: int) -> HostEntry:
    return HostEntry(
        mac=netaddr.EUI(0xFA163E770000 + last),
        address=netaddr.IPAddress(f"10.77.0.{last}"),
        hostname=f"vm{last}",
        shard=shard,
    )


class Client:
    """udhcpc in the foreground in its own namespace."""

    def __init__(self, ns: str, log: pathlib.Path, script: pathlib.Path):
        self.ns, self.log = ns, log
        self.proc = netns.popen(
            ["udhcpc", "-f", "-i", "eth0", "-t", "20", "-T", "1", "-A", "1"]
            + ["-s", str(script)],
            netns=ns,
            env={**os.environ, "UDHCPC_LOG": str(log)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def events(self) -> list[dict[str, str]]:
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            kind, *pairs = line.split(" ")
            found.append(
                {"event": kind, **dict(p.split("=", 1) for p in pairs)}
            )
        return found

    def bound(self, timeout: float = 20.0) -> dict[str, str]:
        def done() -> dict[str, str] | None:
            hits = [e for e in self.events() if e["event"] == "bound"]
            return hits[-1] if hits else None

        return wait_for(done, timeout, f"bound in {self.ns}")  # type: ignore[return-value]

    def renew(self, timeout: float = 10.0) -> dict[str, str]:
        """SIGUSR1; the next renew/nak/bound event."""
        count = len(self.events())
        self.proc.send_signal(signal.SIGUSR1)

        def answer() -> dict[str, str] | None:
            for e in self.events()[count:]:
                if e["event"] in ("renew", "nak", "bound"):
                    return e
            return None

        return wait_for(answer, timeout, "renew answer")  # type: ignore[return-value]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class ShardSite:
    def __init__(self, make_netns, root: pathlib.Path, shards: int) -> None:
        self.host = make_netns("h")
        self.bridge = netns.unique_name("b")
        self.root = root
        np = root / "networks"
        np.mkdir(mode=0o755)
        np.chmod(0o755)
        self.make_netns = make_netns
        netns.run(
            ["ip", "link", "add", self.bridge, "type", "bridge"], self.host
        )
        netns.run(["ip", "link", "set", self.bridge, "up"], self.host)
        netns.run(
            ["ip", "addr", "add", f"{GATEWAY}/24", "dev", self.bridge],
            self.host,
        )
        self.settings = plan.DhcpSettings(
            networks_path=str(np), dhcpbridge="/bin/true", dhcp_lease_time=120
        )
        hook = np / plan.HOOK_SCRIPT_NAME
        hook.write_text(dhcp_hook.hook_script("/bin/true"))
        hook.chmod(0o755)
        lua = pathlib.Path(plan.hook_script_path(str(np), "lua"))
        lua.write_text(dhcp_hook.lua_script())
        lua.chmod(0o644)
        self.script = root / "udhcpc.sh"
        self.script.write_text(SCRIPT)
        self.script.chmod(0o755)
        self.keeper = DnsmasqKeeper(interval=0)
        self.dhcp = ShardedDhcp(
            self.settings,
            DhcpTuning(keeper_interval=0),
            self.keeper,
            host_netns=self.host,
        )
        self.network = network(self.bridge)
        self.rows = [
            DhcpShard(7, k, netaddr.IPAddress(f"10.77.0.{254 - k}"))
            for k in range(shards)
        ]
        self.entries: list[HostEntry] = []
        self.leased: list[Lease] = []
        self.clients: list[Client] = []

    def sync(self) -> bool:
        return self.dhcp.sync(
            self.network, self.rows, self.entries, self.leased
        )

    def plug(self, host: HostEntry) -> Client:
        ns = self.make_netns("vm")
        port = netns.unique_name("p")
        netns.veth(
            self.host, port, ns, "eth0", mac_b=str(host.mac).replace("-", ":")
        )
        netns.run(
            ["ip", "link", "set", port, "master", self.bridge], self.host
        )
        client = Client(ns, self.root / f"{ns}.log", self.script)
        self.clients.append(client)
        return client

    def journal(self, index: int) -> list[str]:
        path = self.dhcp.shards_of(7)[index].spec.paths.events
        with contextlib.suppress(FileNotFoundError):
            return [
                x for x in pathlib.Path(path).read_text().splitlines() if x
            ]
        return []

    def shard_pid(self, index: int) -> int | None:
        return self.dhcp.shards_of(7)[index].proc.pid()

    def close(self) -> None:
        for client in self.clients:
            client.stop()
        with contextlib.suppress(Exception):
            self.dhcp.remove(self.network, self.rows)
        for k in range(len(self.rows)):  # whatever remove() could not
            name = f"fn-{self.bridge}-s{k}"
            netns.kill_all(name)
            with contextlib.suppress(Exception):
                netlink.delete_netns(name)
