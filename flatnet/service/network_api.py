"""nova's network API for a compute driver, over the database.

The names and semantics are nova's (``nova/network/api.py`` calls into
``NetworkManager.allocate_for_instance``, ``deallocate_for_instance``,
``get_instance_nw_info``, ``setup_networks_on_host``,
``migrate_instance_start``, ``migrate_instance_finish``), but no method
touches a bridge, dnsmasq, iptables or libvirt in the caller's process:
each writes the database through :class:`FlatDHCPManager` or the DB API
and then WAITS until the hosts concerned report the change live
(``host_state``: DHCP on the network host, the instance's filter on its
compute host; :func:`flatnet.service.manager.wait_ready`).

Safe under eventlet without importing it: every database call (a
blocking native call) goes through ``executor`` (default: a direct
call; an eventlet process passes ``eventlet.tpool.execute``, see
:mod:`flatnet.cmd.eventlet_support`), and waiting between polls is
``time.sleep``, which a monkey-patched process turns into a yield to
the hub.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from flatnet import exception, model
from flatnet.db import api as db_api
from flatnet.plan import libvirt_interface
from flatnet.plan import nw_info as nwplan
from flatnet.service import firewall_driver, wake
from flatnet.service.manager import FlatDHCPManager, wait_ready

_T = TypeVar("_T")
#: nova's network info: one dict per VIF (plan.nw_info.vif_dict)
NetworkInfo = list[nwplan.VifDict]
#: how long allocate_for_instance waits by default (nova's
#: ``vif_plugging_timeout`` is 300 s; DHCP and filters take well under
#: a second on an idle host)
DEFAULT_TIMEOUT = 60.0
#: the shortest pause between readiness checks (they grow with the
#: time waited, up to the API's ``interval``): a check is a few
#: indexed reads
FIRST_POLL = 0.005
#: the longest (a boot storm's hundreds of waiters must not crowd out
#: the host service they wait for)
LAST_POLL = 1.0


class Executor(Protocol):
    """Runs a blocking call: ``executor(fn, *args)`` returns its value
    (``eventlet.tpool.execute`` has this signature)."""

    def __call__(self, fn: Callable[..., _T], /, *args: Any) -> _T: ...


def direct(fn: Callable[..., _T], /, *args: Any) -> _T:
    """The default executor: call ``fn`` in the caller's thread."""
    return fn(*args)


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """nova's ``migration`` argument: where the instance goes from/to."""

    source_compute: str | None
    dest_compute: str


def _migration(migration: Mapping[str, Any] | object) -> Migration:
    get: Callable[[str], Any]
    if isinstance(migration, Mapping):
        get = migration.get
    else:

        def get(name: str) -> Any:
            return getattr(migration, name, None)

    dest = get("dest_compute")
    if not isinstance(dest, str) or not dest:
        raise exception.InvalidInput(
            reason=f"migration without dest_compute: {migration!r}"
        )
    return Migration(get("source_compute"), dest)


def _ident(instance: object) -> str:
    """A uuid or name, or the ``uuid`` of a nova-like instance object."""
    if isinstance(instance, str) and instance:
        return instance
    return firewall_driver.instance_uuid(instance)


def dhcp_host(info: model.NetworkInfo, default: str) -> str:
    """The host serving DHCP for a VIF: the network's host, or the
    instance's own host on a multi_host network (nova), else
    ``default``."""
    if info.network.multi_host:
        return info.instance.host or default
    return info.network.host or default


def probe(
    db: db_api.Database, infos: Sequence[model.NetworkInfo], default: str
) -> None:
    """One readiness check (no sleeping): DHCP on each VIF's DHCP host,
    then the instance's filters on its compute host. Raises NotReady
    naming the cause when something is not live yet."""
    by_host: dict[str, list[model.NetworkInfo]] = {}
    for info in infos:
        by_host.setdefault(dhcp_host(info, default), []).append(info)
    for host, group in sorted(by_host.items()):
        wait_ready(db, group, host, 0.0, interval=0.0)


def probe_gone(
    db: db_api.Database,
    releases: Sequence[model.FixedIpRelease],
    dhcp_hosts: Mapping[int, str],
    compute_hosts: Sequence[str],
) -> None:
    """One check after a deallocation: each network's DHCP host and the
    instance's former compute host applied what is committed now."""
    generations = db_api.network_generations(db)
    for release in releases:
        host = dhcp_hosts[release.network_id]
        target = generations.get(release.network_id, 0)
        if (
            db_api.host_state_get(db, host, release.network_id, "dhcp")
            < target
        ):
            raise exception.NotReady(
                f"DHCP host {host} has not applied the release of "
                f"{release.address} (network generation {target})",
                what="dhcp",
                timeout=0.0,
            )
    for host in compute_hosts:
        probe_dropped(db, host)


def on_host(
    infos: Sequence[model.NetworkInfo], host: str
) -> list[model.NetworkInfo]:
    """``infos`` as if the instance were placed on ``host`` (what a
    live migration's destination must have live)."""
    return [
        dataclasses.replace(
            info, instance=dataclasses.replace(info.instance, host=host)
        )
        for info in infos
    ]


def probe_dropped(db: db_api.Database, host: str) -> None:
    """One check: ``host`` applied the firewall state committed now
    (its filter frame; an instance no longer filtered there is gone)."""
    if firewall_driver.has_compute_role(db, host):
        firewall_driver.wait_key(
            db, host, firewall_driver.host_key(host),
            db_api.firewall_generation(db), 0.0, f"host {host}",
        )  # fmt: skip


class NetworkAPI:
    """nova's network API for the compute driver of ``host``."""

    def __init__(  # noqa: PLR0913 - the API's collaborators and timing
        self,
        manager: FlatDHCPManager,
        host: str,
        *,
        interval: float = 0.05,
        timeout: float = DEFAULT_TIMEOUT,
        executor: Executor = direct,
        wake_path: str | None = None,
    ) -> None:
        self.manager, self.db, self.host = manager, manager.db, host
        self.interval, self.timeout = interval, timeout
        self.execute = executor
        #: the local flatnet-network's wake socket (service.wake): told
        #: after each write so that it polls at once
        self.wake_path = wake_path

    def _wake(self) -> None:
        if self.wake_path is not None:
            wake.notify(self.wake_path)

    # --- waiting --------------------------------------------------------
    def _until(
        self, check: Callable[..., None], args: tuple[Any, ...], timeout: float
    ) -> None:
        """Run ``check(*args)`` through the executor until it stops
        raising NotReady; sleep (a yield under eventlet) between tries:
        a tenth of the time waited so far, at least FIRST_POLL and at
        most LAST_POLL (or ``interval`` if longer), so a change live
        after t is seen by about 1.1 t, and a long wait asks rarely."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            try:
                self.execute(check, *args)
                return
            except exception.NotReady as exc:
                if time.monotonic() >= deadline:
                    raise exception.NotReady(
                        str(exc).replace(
                            "after 0.0 s", f"after {timeout:.1f} s"
                        ),
                        what=exc.kwargs.get("what", "network"),
                        timeout=timeout,
                    ) from None
            waited = time.monotonic() - start
            cap = max(self.interval, LAST_POLL)
            time.sleep(min(max(FIRST_POLL, waited / 10), cap))

    def wait(
        self, infos: Sequence[model.NetworkInfo], timeout: float | None = None
    ) -> None:
        """Until DHCP and the instances' filters of ``infos`` are live."""
        budget = self.timeout if timeout is None else timeout
        self._until(probe, (self.db, infos, self.host), budget)

    # --- nova's methods -------------------------------------------------
    def allocate_for_instance(  # noqa: PLR0913 - nova's arguments
        self,
        instance: str,
        host: str | None = None,
        security_groups: Sequence[str] = (),
        mac: str | None = None,
        network: str | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> NetworkInfo:
        """Create instance ``instance`` (its name: the DHCP host name)
        on ``host`` (default: this API's host) with one VIF and fixed IP
        per network (or on ``network``), in ``security_groups``; return
        nova's network info once DHCP serves it and its filters are live
        (``wait``), or NotReady naming the cause after ``timeout``.
        Raises what FlatDHCPManager.allocate_for_instance raises."""
        infos = self.execute(
            self.manager.allocate_for_instance,
            instance, mac, network, host or self.host, tuple(security_groups),
        )  # fmt: skip
        self._wake()
        if wait:
            self.wait(infos, timeout)
        return nwplan.network_info(infos)

    def get_instance_nw_info(self, instance: object) -> NetworkInfo:
        """nova's network info of a live instance (uuid or name)."""
        return nwplan.network_info(self._infos(instance))

    def _infos(self, instance: object) -> list[model.NetworkInfo]:
        found = self.execute(db_api.instance_get, self.db, _ident(instance))
        return self.execute(db_api.network_info, self.db, found.uuid)

    def deallocate_for_instance(
        self,
        instance: object,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Deallocate every VIF and fixed IP and delete the instance
        (nova's order); with ``wait``, until the DHCP hosts and the
        compute host applied it (hosts entry and filter gone)."""
        infos = self._infos(instance)
        hosts = {i.network.id: dhcp_host(i, self.host) for i in infos}
        ident = _ident(instance)
        compute = {i.instance.host for i in infos if i.instance.host}
        moving = self.execute(db_api.migration_get, self.db, ident)
        if moving is not None:
            compute.add(moving.dest_compute)
        releases = self.execute(self.manager.deallocate_for_instance, ident)
        self._wake()
        if wait:
            budget = self.timeout if timeout is None else timeout
            args = (self.db, releases, hosts, sorted(compute))
            self._until(probe_gone, args, budget)

    def setup_networks_on_host(
        self,
        instance: object,
        host: str | None = None,
        teardown: bool = False,
        timeout: float | None = None,
    ) -> None:
        """nova FlatDHCP does little here. flatnet waits until the
        instance's DHCP and filters are live on ``host``; a ``host``
        other than the instance's (nova ``pre_live_migration`` on the
        destination) starts a live migration there: the instance is
        filtered on both hosts. ``teardown`` on a migration's
        destination (nova ``rollback_live_migration_at_destination``)
        rolls it back and waits until that host dropped the filter;
        any other teardown changes nothing (the source's filter goes at
        ``migrate_instance_finish``)."""
        ident = _ident(instance)
        budget = self.timeout if timeout is None else timeout
        if teardown:
            if host is not None and self.execute(
                db_api.migration_abort, self.db, ident, host
            ):
                self._wake()
                self._until(probe_dropped, (self.db, host), budget)
            return
        if host is not None:
            self.execute(db_api.migration_begin, self.db, ident, host)
            self._wake()
        infos = self._infos(ident)
        self.wait(on_host(infos, host) if host else infos, budget)

    def migrate_instance_start(
        self, instance: object, migration: Mapping[str, Any] | object
    ) -> None:
        """nova calls it on the source once the guest runs on the
        destination (``_post_live_migration``): the destination filters
        the instance (recorded now unless ``pre_live_migration`` did)
        and this waits for its filters and DHCP. The source keeps its
        filters until ``migrate_instance_finish``."""
        move, ident = _migration(migration), _ident(instance)
        self.execute(db_api.migration_begin, self.db, ident, move.dest_compute)
        self._wake()
        self.wait(on_host(self._infos(ident), move.dest_compute))

    def migrate_instance_finish(
        self, instance: object, migration: Mapping[str, Any] | object
    ) -> None:
        """The instance is placed on ``dest_compute`` and its migration
        ends (one transaction): the source drops its filters on its
        next sync (not waited for: the source may be down; its
        ``unfilter_instance`` waits). Waits for the destination."""
        move, ident = _migration(migration), _ident(instance)
        self.execute(
            db_api.migration_finish, self.db, ident, move.dest_compute
        )
        self._wake()
        self.wait(self._infos(ident))

    def migration_rollback(
        self, instance: object, migration: Mapping[str, Any] | object
    ) -> None:
        """nova ``_rollback_live_migration`` in one call: the
        destination drops the instance's filters (waited for), the
        source keeps them."""
        move = _migration(migration)
        self.setup_networks_on_host(instance, move.dest_compute, teardown=True)

    # --- libvirt --------------------------------------------------------
    @staticmethod
    def interface_xml(vif: nwplan.VifDict, model_type: str = "virtio") -> str:
        """The libvirt ``<interface type='bridge'>`` of one VIF of the
        network info (MAC, model, bridge, tap, filterref)."""
        spec = nwplan.interface_spec(vif, model_type)
        return libvirt_interface.interface_xml(spec)

    def firewall(
        self, host: str | None = None
    ) -> firewall_driver.FirewallDriver:
        """nova's firewall-driver methods for ``host`` (default: this
        API's host); see flatnet.service.firewall_driver."""
        return firewall_driver.FirewallDriver(
            self.db, host or self.host, self.interval
        )
