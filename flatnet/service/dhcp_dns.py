"""The DNS-only dnsmasq of a sharded network (part of component
``dhcp``).

Instance names are served apart from DHCP, by a dnsmasq with no
``--dhcp-range`` (so no DHCP socket) on the network's DHCP address
(``plan.dhcp_shards.dns_argv``). New names go into one ``--hostsdir``
file per sync (only the shards whose hosts were read are rendered
again), read by inotify without a reload; a removed or changed
name rewrites the ``--addn-hosts`` file, empties the directory and HUPs
it (dnsmasq forgets hostsdir entries only on SIGHUP, dnsmasq(8)
``--hostsdir``). Nothing here blocks DHCP: a shard never waits for it.

Its proof of identity: the exact argument ``--pid-file=<its pid
file>`` and a UDP socket on port 53 created by root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Collection, Iterator, Mapping

from flatnet.linux import files, netlink
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.plan import dhcp_shards as shard_plan
from flatnet.plan import dnsmasq as plan

LOG = logging.getLogger(__name__)
DNS_PORT = 53


class DnsOnly:
    """The DNS-only dnsmasq of every sharded network of this host."""

    def __init__(self, host_netns: str | None, timeout: float) -> None:
        self.host_netns = host_netns
        self.timeout = timeout
        self._procs: dict[int, DnsmasqProcess] = {}
        self._names: dict[int, dict[int, dict[str, str]]] = {}

    def proc(
        self, sharded: shard_plan.ShardedPlan, spec: plan.DnsmasqSpec
    ) -> DnsmasqProcess:
        found = self._procs.get(sharded.network_id)
        if found is None:
            paths = dataclasses.replace(spec.paths, pid=sharded.dns_pid)
            found = self._procs[sharded.network_id] = DnsmasqProcess(
                f"{sharded.bridge}-dns",
                paths,
                netns=self.host_netns,
                marker=f"--pid-file={sharded.dns_pid}",
                port=DNS_PORT,
            )
        return found

    @contextlib.contextmanager
    def _home(self) -> Iterator[None]:
        """Probe sockets in the namespace the server lives in."""
        if self.host_netns is None:
            yield
        else:
            with netlink.entered(self.host_netns):
                yield

    def served(
        self, sharded: shard_plan.ShardedPlan, spec: plan.DnsmasqSpec
    ) -> bool:
        with self._home():
            return self.proc(sharded, spec).wait_served(
                str(sharded.dns_listen), self.timeout
            )

    def sync(
        self,
        sharded: shard_plan.ShardedPlan,
        spec: plan.DnsmasqSpec,
        names: Mapping[int, Mapping[str, str]],
        changed: Collection[int],
    ) -> None:
        """``names`` (shard index -> MAC text -> hosts line) served;
        only the ``changed`` shards' are compared with what it serves
        (all when it must be (re)started or this daemon has none yet):
        (re)start, HUP (a name removed or changed) or one ``--hostsdir``
        file (new names) as needed."""
        proc = self.proc(sharded, spec)
        argv = list(sharded.dns_argv)
        known = self._names.get(sharded.network_id)
        pid = proc.pid()
        if pid is not None and not proc.matches(pid, argv):
            proc.stop(pid)
            pid = None
        files.ensure_dir(spec.paths.dns_hostsdir)
        if pid is None or known is None:
            served = {k: dict(v) for k, v in names.items()}
            self._restart(proc, argv, pid, spec.paths, served)
        else:
            fresh = {k: dict(names[k]) for k in changed if k in names}
            served = {**known, **fresh}
            if any(_changed(known.get(k, {}), v) for k, v in fresh.items()):
                self._restart(proc, argv, pid, spec.paths, served)
            else:
                self._add(spec.paths, known, fresh)
        self._names[sharded.network_id] = served

    def _restart(
        self,
        proc: DnsmasqProcess,
        argv: list[str],
        pid: int | None,
        paths: plan.DnsmasqPaths,
        names: dict[int, dict[str, str]],
    ) -> None:
        self._rewrite(
            paths, {m: x for v in names.values() for m, x in v.items()}
        )
        if pid is None:
            proc.start(argv)
        else:
            proc.reload(pid)

    @staticmethod
    def _add(
        paths: plan.DnsmasqPaths,
        known: dict[int, dict[str, str]],
        fresh: dict[int, dict[str, str]],
    ) -> None:
        """The new names in one ``--hostsdir`` file (read by inotify)."""
        new = [
            (mac, line)
            for k, lines in fresh.items()
            for mac, line in lines.items()
            if mac not in known.get(k, {})
        ]
        if new:
            text = "".join(line + "\n" for _, line in new)
            name = new[0][0].replace(":", "-")
            files.replace_file(
                os.path.join(paths.dns_hostsdir, name), text, durable=False
            )

    def _rewrite(
        self, paths: plan.DnsmasqPaths, names: dict[str, str]
    ) -> None:
        text = "".join(line + "\n" for line in names.values())
        files.ensure_file(paths.addn_hosts, text, mode=0o644)
        for name in files.list_dir(paths.dns_hostsdir):
            files.delete_file(os.path.join(paths.dns_hostsdir, name))

    def stop(
        self, sharded: shard_plan.ShardedPlan, spec: plan.DnsmasqSpec
    ) -> None:
        """Stop the network's DNS-only dnsmasq (found by its pid file,
        also when this daemon never started it)."""
        proc = self.proc(sharded, spec)
        self._procs.pop(sharded.network_id, None)
        self._names.pop(sharded.network_id, None)
        if (pid := proc.pid()) is not None:
            proc.stop(pid)


def _changed(known: dict[str, str], names: dict[str, str]) -> bool:
    """True if a known name was removed or changed (only a HUP forgets)."""
    return any(names.get(mac) != line for mac, line in known.items())
