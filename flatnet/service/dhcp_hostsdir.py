"""The host files of one network's dnsmasq (part of component ``dhcp``).

What :class:`~flatnet.service.dhcp.DhcpReconciler` believes dnsmasq has
loaded (:class:`NetState`) and how the hosts reach it:

* the main ``--dhcp-hostsfile`` (``nova-<br>.conf``, with hostsdir also
  the names in ``nova-<br>.hosts``), re-read only on SIGHUP;
* NEW hosts in batches, ONE file per batch in ``nova-<br>.d/`` (names
  first in ``nova-<br>.hd/``), read by dnsmasq through inotify;
* a compaction (all hosts into the main file, directories emptied)
  when a host was removed or changed, or too many accumulated: dnsmasq
  forgets hostsdir entries only on SIGHUP.

What dnsmasq has loaded cannot be read back from it, and the files on
disk are not proof: a crash between replacing a file and the SIGHUP
leaves dnsmasq serving the old content. So before the first change
that needs a SIGHUP, :func:`owe_reload` writes a marker file
``nova-<br>.pending``; it is removed only once dnsmasq answered after
the SIGHUP (or a start, which reads every file). A marker found at any
time (after a crash: at the next start) means "reload before trusting
the files" (:func:`reload_owed`).

Every function here writes through :mod:`flatnet.linux.files` and raises
HostNetworkError on a file error.
"""

from __future__ import annotations

import dataclasses
import os

from flatnet import exception
from flatnet.linux import files
from flatnet.model import HostEntry, Network
from flatnet.plan import dnsmasq as plan


@dataclasses.dataclass(slots=True)
class NetState:
    """What this daemon believes dnsmasq has loaded for one network."""

    paths: plan.DnsmasqPaths
    main: dict[str, str] | None = None  # MAC -> line in nova-<br>.conf
    hostsdir: dict[str, str] = dataclasses.field(default_factory=dict)
    dns: dict[str, str] = dataclasses.field(default_factory=dict)
    releases: dict[tuple[str, str], tuple[int, float]] = dataclasses.field(
        default_factory=dict
    )
    pending: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    network: Network | None = None  # the last network synced
    slow: bool = False  # a small hostsdir batch took > slow_batch
    owed: bool = False  # the pending marker is on disk
    reloads: int = 0
    starts: int = 0


def marker_path(paths: plan.DnsmasqPaths) -> str:
    """``nova-<br>.pending`` next to the hosts file ``nova-<br>.conf``."""
    return paths.hosts.removesuffix(".conf") + ".pending"


def reload_owed(state: NetState) -> bool:
    """True if files changed that dnsmasq may not have loaded (the
    marker exists, left by this process or by one that crashed)."""
    state.owed = files.read_text(marker_path(state.paths)) is not None
    return state.owed


def owe_reload(state: NetState) -> None:
    """Write the marker (before a change that needs a SIGHUP)."""
    if not state.owed:
        files.replace_file(marker_path(state.paths), "", durable=False)
        state.owed = True


def reload_done(state: NetState) -> None:
    """dnsmasq answered after a SIGHUP or start: it has every file."""
    files.delete_file(marker_path(state.paths))
    state.owed = False


def ensure_file(state: NetState, path: str, content: str) -> bool:
    """Write ``path`` if it differs, owing a reload first; True if
    written."""
    if not files.differs(path, content):
        return False
    owe_reload(state)
    files.replace_file(path, content)
    return True


def clean_leftovers(networks_path: str) -> list[str]:
    """Remove what a killed daemon leaves under ``networks_path``: the
    temporary files of interrupted atomic writes (``.nova-br100.conf.*``,
    batch files in ``nova-<br>.d``/``.hd``) and ``init`` snapshots
    (a snapshot must never outlive the start it was written for).
    Returns the paths removed (for the log)."""
    removed = [
        os.path.join(networks_path, name)
        for prefix in ("nova-", "flatnet-")
        for name in files.delete_temp_files(networks_path, prefix)
    ]
    for name in files.list_dir(networks_path):
        path = os.path.join(networks_path, name)
        if not name.startswith("nova-"):
            continue
        if name.endswith((".d", ".hd")) and os.path.isdir(path):
            removed += [
                os.path.join(path, x) for x in files.delete_temp_files(path)
            ]
        elif name.endswith(".init") and files.delete_file(path):
            removed.append(path)
    return removed


def check_access(networks_path: str) -> None:
    """Raise ConfigError unless ``networks_path`` and every parent
    directory up to ``/`` are traversable by others (o+x).

    dnsmasq drops to ``nobody`` before it reads its hosts files; a
    0700 parent (``mktemp -d``, a home directory) makes it silently
    serve nobody.
    """
    closed = files.closed_to_others(networks_path)
    if closed is not None:
        raise exception.ConfigError(
            reason=(
                f"dnsmasq runs as 'nobody' and cannot read "
                f"{networks_path}: directory {closed} "
                f"is not traversable by others; fix: chmod o+x {closed}"
            )
        )


def _mac_of(line: str) -> str:
    return line.split(",", 1)[0]


def _dir_name(mac: str) -> str:
    return mac.replace(":", "-")


def load(paths: plan.DnsmasqPaths) -> tuple[dict[str, str], dict[str, str]]:
    """Parse our own files back (used once after a daemon restart)."""
    text = files.read_text(paths.hosts) or ""
    main = {_mac_of(x): x for x in text.splitlines() if x}
    hostsdir = {}
    for name in files.list_dir(paths.hostsdir):
        text = files.read_text(os.path.join(paths.hostsdir, name)) or ""
        for line in text.splitlines():
            if line.strip():
                hostsdir[_mac_of(line.strip())] = line.strip()
    return main, hostsdir


def write_main(state: NetState, wanted: dict[str, str]) -> bool:
    """The hosts file (and, with hostsdir, the addn-hosts file with the
    same hosts' names); True if either changed."""
    text = "".join(line + "\n" for line in wanted.values())
    changed = ensure_file(state, state.paths.hosts, text)
    if state.dns:
        names = "".join(state.dns[mac] + "\n" for mac in wanted)
        changed |= ensure_file(state, state.paths.addn_hosts, names)
    state.main = dict(wanted)
    return changed


def needs_compaction(
    state: NetState, wanted: dict[str, str], compact_files: int
) -> bool:
    """True if a host was removed or changed (only a HUP forgets), or
    the hostsdir would hold more than ``compact_files`` hosts."""
    known = {**(state.main or {}), **state.hostsdir}
    if any(wanted.get(mac) != line for mac, line in known.items()):
        return True
    new = sum(1 for mac in wanted if mac not in known)
    return len(state.hostsdir) + new > compact_files


def compact(state: NetState, wanted: dict[str, str]) -> bool:
    """All hosts into the main file, hostsdir emptied; True = HUP."""
    changed = write_main(state, wanted)
    for folder in (state.paths.hostsdir, state.paths.dns_hostsdir):
        for name in files.list_dir(folder):
            owe_reload(state)
            files.delete_file(os.path.join(folder, name))
            changed = True
    state.hostsdir = {}
    return changed


def queue_new(state: NetState, wanted: dict[str, str]) -> None:
    """Queue the hosts dnsmasq does not know yet for :func:`write_batch`."""
    main = state.main or {}
    state.pending = [
        (mac, line)
        for mac, line in wanted.items()
        if mac not in main and mac not in state.hostsdir
    ]


def write_batch(state: NetState, size: int) -> int:
    """Write the next ``size`` pending hosts as ONE file; how many.

    dnsmasq handles each hostsdir file event with a full pass over its
    configs and leases (inotify.c: dhcp_update_configs,
    lease_update_from_configs, lease_update_dns), whatever the number of
    lines in the file; so one file per batch, named after the batch's
    first MAC (unique: a MAC is in the directory at most once between
    compactions).
    """
    batch = state.pending[:size]
    del state.pending[:size]
    if not batch:
        return 0
    name = _dir_name(batch[0][0])
    if state.dns:  # names first: the lease then finds them (plan NOTE)
        names = "".join(state.dns[mac] + "\n" for mac, _line in batch)
        path = os.path.join(state.paths.dns_hostsdir, name)
        files.replace_file(path, names, durable=False)
    text = "".join(line + "\n" for _mac, line in batch)
    path = os.path.join(state.paths.hostsdir, name)
    files.replace_file(path, text, durable=False)
    state.hostsdir.update(batch)
    return len(batch)


def write_files(
    settings: plan.DhcpSettings,
    compact_files: int,
    network: Network,
    spec: plan.DnsmasqSpec,
    state: NetState,
    entries: list[HostEntry],
) -> bool:
    """Write one dnsmasq's opts/addn-hosts/hosts (new hosts queued for
    :func:`write_batch` with hostsdir); True if dnsmasq must re-read.
    ``compact_files`` < 0 forces every host into the main file (a
    start)."""
    paths = spec.paths
    files.ensure_dir(settings.networks_path)
    single = settings.use_single_default_gateway
    gateway = plan.opts_gateway(network, settings.share_dhcp_address)
    hup = ensure_file(
        state, paths.opts, plan.opts_file(gateway, entries, single)
    )
    if spec.multi_host and not spec.hostsdir:  # nova multi_host
        hup |= ensure_file(
            state, paths.addn_hosts, plan.addn_hosts_file(entries, spec.domain)
        )
    wanted = plan.host_lines(entries, spec.domain, single)
    if not spec.hostsdir:
        hup |= write_main(state, wanted)
        return hup
    state.dns = plan.dns_host_lines(entries, spec.domain)
    files.ensure_dir(paths.hostsdir)
    files.ensure_dir(paths.dns_hostsdir)
    if state.main is None:
        state.main, state.hostsdir = load(paths)
    if needs_compaction(state, wanted, compact_files):
        state.pending = []
        return compact(state, wanted) or hup
    queue_new(state, wanted)
    return hup


def changed(state: NetState, network: Network) -> bool:
    """True when ``network`` differs from the one last applied in more
    than its generation: the bridge is ensured then, not on every
    allocation (which moves only the generation)."""
    known = state.network
    if known is None:
        return True
    return dataclasses.replace(known, generation=network.generation) != network
