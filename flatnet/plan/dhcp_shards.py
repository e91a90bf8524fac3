"""PURE: a large network served by several dnsmasq (shards), DNS apart.

A network with more hosts than ``dhcp_shard_hosts`` gets N shards
(stored in the database, see ``flatnet.db.shards``). Shard ``k`` is:

* a network namespace ``fn-<bridge>-s<k>`` attached to the bridge by a
  veth ``<bridge>-s<k>`` (its peer is ``eth0`` in the namespace) that
  carries the shard's reserved address. One namespace per shard, because
  with ``--bind-interfaces`` dnsmasq binds 0.0.0.0:67 with SO_REUSEPORT
  (dnsmasq dhcp.c ``make_fd``) and the kernel hands each unicast datagram
  to one socket of the group by a hash of addresses and ports
  (socket(7) SO_REUSEPORT), not by listen address: in one shared
  namespace a renewal or a ``dhcp_release`` would reach a random shard;
* a DHCP-only dnsmasq (``--port=0``) that knows only its own hosts and
  ignores every other client (``--dhcp-ignore=tag:!known``, checked
  before any NAK path, dnsmasq rfc2131.c), with the router (optsfile)
  and the DNS server (``--dhcp-option=6,<gateway>``) explicit: a
  DHCP-only dnsmasq would otherwise offer its own address for both
  (dnsmasq(8) ``--dhcp-option``: "option 6 ... the address of the machine
  running dnsmasq");
* a set of MACs in the bridge-family nftables table ``flatnet_<bridge>``
  and one rule dropping DHCP to the shard's port from any other source
  MAC (nft(8) "bridge" family, ``ether saddr``), so that a broadcast
  reaches only the shard that owns the client. A MAC joins its set
  BEFORE its dhcp-host line is written.

Instance names are served by a DNS-only dnsmasq (no ``--dhcp-range``,
so no DHCP socket) on the network's DHCP address, reading names
incrementally from ``--hostsdir``: DHCP never waits for DNS.

What a guest sees changes in one way: the server identifier (option 54)
and the reply's source are its shard's address.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence

import netaddr

from flatnet import exception
from flatnet.model import DhcpShard, HostEntry, Network
from flatnet.plan import dhcp_hook
from flatnet.plan import dnsmasq as plan
from flatnet.plan.dnsmasq_files import mac_text

IFNAMSIZ = 15
SHARD_IFNAME = "eth0"  # the veth peer inside the shard's namespace
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


def _checked_bridge(bridge: str) -> str:
    if not _IFNAME.fullmatch(bridge):
        raise exception.InvalidInput(
            reason=f"bridge name {bridge!r} is not an interface name"
        )
    return bridge


def shard_netns(bridge: str, index: int) -> str:
    """The network namespace of shard ``index`` (``fn-<br>-s<k>``)."""
    return f"fn-{_checked_bridge(bridge)}-s{index}"


def shard_veth(bridge: str, index: int) -> str:
    """The bridge-side veth of shard ``index``: ``<br>-s<k>`` when that
    fits in IFNAMSIZ, else ``fs<crc>-<k>`` (unique per bridge name)."""
    name = f"{_checked_bridge(bridge)}-s{index}"
    if len(name) <= IFNAMSIZ:
        return name
    return f"fs{zlib.crc32(bridge.encode()):08x}-{index}"[:IFNAMSIZ]


def nft_table(bridge: str) -> str:
    """The bridge-family table of ``bridge`` (an nft identifier)."""
    return "flatnet_" + re.sub(r"[^A-Za-z0-9_]", "_", _checked_bridge(bridge))


def shard_paths(
    networks_path: str, bridge: str, index: int
) -> plan.DnsmasqPaths:
    """Shard ``index``'s files: ``nova-<br>-s<k>.{conf,pid,events,...}``;
    the opts file is the network's (``nova-<br>.opts``)."""
    common = plan.dnsmasq_paths(networks_path, bridge)
    own = plan.dnsmasq_paths(networks_path, f"{bridge}-s{index}")
    return dataclasses.replace(own, opts=common.opts)


def shard_journals(
    networks_path: str, bridge: str, shards: Iterable[DhcpShard]
) -> list[str]:
    """The lease journal of each of ``shards`` (their Lua hooks')."""
    return [shard_paths(networks_path, bridge, s.index).events for s in shards]


def dns_pid_path(networks_path: str, bridge: str) -> str:
    """The pid file of the network's DNS-only dnsmasq."""
    return plan.dnsmasq_paths(networks_path, f"{bridge}-dns").pid


@dataclasses.dataclass(frozen=True, slots=True)
class ShardSpec:
    """Everything one shard's namespace, veth and dnsmasq depend on."""

    index: int
    netns: str
    veth: str
    address: netaddr.IPAddress
    prefixlen: int
    paths: plan.DnsmasqPaths
    argv: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ShardedPlan:
    """A sharded network: its shards, its DNS-only server, its table."""

    network_id: int
    bridge: str
    shards: tuple[ShardSpec, ...]
    dns_argv: tuple[str, ...]
    dns_pid: str
    dns_listen: netaddr.IPAddress
    table: str


def hook_args(events: str, lua_script: str) -> tuple[list[str], list[str]]:
    """The lease hook of a shard: (env additions, dnsmasq options).

    The ONE place that says how a shard records lease events: always the
    Lua hook (``lua_script``, the copy of plan/lease_hook.lua) appending
    to the shard's own journal ``events``, whatever ``dhcp_lease_hook``
    says (that option keeps nova's exact argv for one dnsmasq; a shard's
    argv is flatnet's own). No fork per event (dnsmasq(8)
    ``--dhcp-luascript``: the script runs in dnsmasq's helper), plus
    ``--dhcp-authoritative --script-on-renewal``
    (:func:`flatnet.plan.dhcp_hook.hook_args`): a restarted shard ACKs
    its clients' renewals, and the daemon expires what nobody renews.
    """
    env = [f"{plan.EVENTS_ENV}={events}"]
    return env, dhcp_hook.hook_args(lua_script, lua=True)


def shard_argv(
    spec: plan.DnsmasqSpec,
    address: netaddr.IPAddress,
    paths: plan.DnsmasqPaths,
    lua_script: str,
) -> tuple[str, ...]:
    """Shard dnsmasq's command line (run inside its namespace)."""
    env, hook = hook_args(paths.events, lua_script)
    argv = [
        "env",
        f"CONFIG_FILE={json.dumps(list(spec.flagfiles))}",
        f"NETWORK_ID={spec.network_id}",
        *env,
        "dnsmasq",
        "--strict-order",
        "--bind-interfaces",
        f"--conf-file={spec.config_file}",
        f"--pid-file={paths.pid}",
        f"--dhcp-optsfile={paths.opts}",
        f"--listen-address={address}",
        "--except-interface=lo",
        f"--dhcp-range=set:{plan.range_tag(spec.label)},{spec.dhcp_start},"
        f"static,{spec.netmask},{spec.lease_seconds}s",
        f"--dhcp-lease-max={spec.lease_max}",
        f"--dhcp-hostsfile={paths.hosts}",
        *hook,
        "--no-hosts",
        "--leasefile-ro",
        # no log line per DHCP packet (errors still logged, dnsmasq(8)
        # --quiet-dhcp): 4 per handshake, 16,000/s in a 4,000/s storm
        "--quiet-dhcp",
    ]
    if spec.domain:
        argv.append(f"--domain={spec.domain}")
    argv += [
        "--port=0",
        "--dhcp-ignore=tag:!known",
        f"--dhcp-option=6,{spec.listen}",
        f"--dhcp-hostsdir={paths.hostsdir}",
    ]
    return tuple(argv)


def dns_argv(spec: plan.DnsmasqSpec, pid: str) -> tuple[str, ...]:
    """The DNS-only dnsmasq on the network's DHCP address (no
    ``--dhcp-range``: dnsmasq opens no DHCP socket)."""
    argv = [
        "dnsmasq",
        "--strict-order",
        "--bind-interfaces",
        f"--conf-file={spec.config_file}",
        f"--pid-file={pid}",
        f"--listen-address={spec.listen}",
        "--except-interface=lo",
        "--no-hosts",
    ]
    if spec.domain:
        argv.append(f"--domain={spec.domain}")
    if spec.dns_servers:
        argv.append("--no-resolv")
        argv += [f"--server={server}" for server in spec.dns_servers]
    argv += [
        f"--addn-hosts={spec.paths.addn_hosts}",
        f"--hostsdir={spec.paths.dns_hostsdir}",
    ]
    return tuple(argv)


def sharded_plan(
    network: Network, settings: plan.DhcpSettings, shards: Sequence[DhcpShard]
) -> ShardedPlan:
    """The plan of a sharded ``network`` (``shards`` from the database).

    Raises ConfigError/InvalidInput as :func:`plan.dnsmasq_spec`, and
    InvalidInput for a shard address outside the network.
    """
    spec = plan.dnsmasq_spec(network, settings)
    lua = plan.hook_script_path(settings.networks_path, "lua")
    cidr = netaddr.IPNetwork(network.cidr)
    specs = []
    for shard in shards:
        if shard.address not in cidr:
            raise exception.InvalidInput(
                reason=f"shard address {shard.address} not in {cidr}"
            )
        paths = shard_paths(
            settings.networks_path, network.bridge, shard.index
        )
        specs.append(
            ShardSpec(
                index=shard.index,
                netns=shard_netns(network.bridge, shard.index),
                veth=shard_veth(network.bridge, shard.index),
                address=shard.address,
                prefixlen=cidr.prefixlen,
                paths=paths,
                argv=shard_argv(spec, shard.address, paths, lua),
            )
        )
    pid = dns_pid_path(settings.networks_path, network.bridge)
    return ShardedPlan(
        network_id=network.id,
        bridge=network.bridge,
        shards=tuple(specs),
        dns_argv=dns_argv(spec, pid),
        dns_pid=pid,
        dns_listen=spec.listen,
        table=nft_table(network.bridge),
    )


def by_shard(
    entries: Iterable[HostEntry], count: int
) -> dict[int, list[HostEntry]]:
    """The hosts of each shard index; a host without a (valid) shard
    is served by none until the database gives it one."""
    result: dict[int, list[HostEntry]] = {k: [] for k in range(count)}
    for entry in entries:
        if entry.shard is not None and entry.shard in result:
            result[entry.shard].append(entry)
    return result


def _set_elements(macs: Iterable[netaddr.EUI]) -> str:
    return ", ".join(sorted({mac_text(m) for m in macs}))


def nft_ruleset(
    sharded: ShardedPlan, members: Mapping[int, Sequence[netaddr.EUI]]
) -> str:
    """``nft -f -`` input that replaces the table atomically (one
    transaction: declare, delete, re-create)."""
    lines = [
        f"table bridge {sharded.table}",
        f"delete table bridge {sharded.table}",
        f"table bridge {sharded.table} {{",
    ]
    for shard in sharded.shards:
        elements = _set_elements(members.get(shard.index, ()))
        body = f" elements = {{ {elements} }};" if elements else ""
        lines.append(f"  set s{shard.index} {{ type ether_addr;{body} }}")
    lines.append("  chain steer {")
    lines.append("    type filter hook forward priority 0; policy accept;")
    for shard in sharded.shards:
        lines.append(
            f'    oifname "{shard.veth}" udp dport 67 '
            f"ether saddr != @s{shard.index} drop"
        )
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def nft_add_members(
    table: str, index: int, macs: Iterable[netaddr.EUI]
) -> str:
    """``nft -f -`` input adding ``macs`` to shard ``index``'s set
    (empty string when there is nothing to add)."""
    elements = _set_elements(macs)
    if not elements:
        return ""
    return f"add element bridge {table} s{index} {{ {elements} }}\n"


def nft_delete_table(table: str) -> str:
    """``nft -f -`` input removing the table (declared first, so it
    succeeds whether or not the table exists)."""
    return f"table bridge {table}\ndelete table bridge {table}\n"
