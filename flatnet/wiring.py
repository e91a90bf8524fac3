"""Wiring: the objects of every flatnet process, built from Settings.

This is the ONE place that decides which executor (netlink, dnsmasq,
iptables backend, dhcp_release) a process uses and hands each service
its settings. Each process is one function taking the typed
:class:`flatnet.settings.Settings`; none reads oslo.config.

========================  ==========================================
process                   function
========================  ==========================================
flatnet-network           :func:`network_host`
flatnet-manage            :func:`database`, :func:`manager`,
                          :func:`host_rules` (verify/repair)
flatnet-dhcpbridge        :func:`database`
compute role              :func:`firewall` (inside :func:`network_host`
                          when ``flatnet_roles`` has ``compute``)
flatnet-metadata          :func:`metadata_service`
compute-driver API        :func:`driver_api`, :func:`network_api`
========================  ==========================================

Each function imports what its process needs, when it is called, so a
command pays only for its own imports (``flatnet-manage network list``
never loads pyroute2, the iptables backends or alembic).
"""

# ruff: noqa: PLC0415 - imports per process are this module's purpose

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flatnet import exception

if TYPE_CHECKING:
    from flatnet.db.api import Database
    from flatnet.model import Network
    from flatnet.plan.metadata import InstanceMetadata
    from flatnet.service.daemon import Daemon, Reconciler
    from flatnet.service.firewall import FirewallReconciler
    from flatnet.service.firewall_driver import FirewallDriver
    from flatnet.service.host_rules import HostRules
    from flatnet.service.manager import FlatDHCPManager
    from flatnet.service.metadata_server import MetadataSettings
    from flatnet.service.network_api import Executor, NetworkAPI
    from flatnet.settings import Settings


def database(settings: Settings, *, create: bool = False) -> Database:
    """The database; only ``flatnet-manage db sync`` passes ``create``
    (everything else refuses a missing SQLite file)."""
    from flatnet.db.api import Database

    return Database(
        settings.database.url,
        create=create,
        busy_timeout=settings.database.busy_timeout,
        private_directory=settings.database.private_directory,
    )


def manager(settings: Settings, db: Database) -> FlatDHCPManager:
    """Allocation and network operations (flatnet-manage, later the
    compute-driver API)."""
    from flatnet.service.manager import FlatDHCPManager

    return FlatDHCPManager(db, settings.manager)


def host_rules(settings: Settings) -> HostRules:
    """The network host's iptables rules and floating binds, with the
    configured iptables backend."""
    from flatnet.linux.address import HostAddresses
    from flatnet.linux.arping import Arping
    from flatnet.linux.conntrack import Conntrack
    from flatnet.linux.iptables import select_backend
    from flatnet.service.host_rules import HostRules

    return HostRules(
        settings.host_rules,
        select_backend(settings.iptables_backend),
        HostAddresses(),
        arping=Arping(),
        conntrack=Conntrack(),
    )


class BridgeEnsurer:
    """Adapter: ensure the bridge (and gateway address) of a network."""

    def __init__(self, flat_interface: str | None) -> None:
        from flatnet.linux.bridge import NetlinkBridge

        self.flat_interface = flat_interface
        self.backend = NetlinkBridge()

    def ensure(self, network: Network) -> None:
        from flatnet.plan import bridge as bridge_plan

        spec = bridge_plan.bridge_spec(network, self.flat_interface)
        self.backend.ensure_bridge(spec)


def firewall(settings: Settings, db: Database) -> FirewallReconciler:
    """The compute role: this host's instance filters (iptables chains
    and ipsets with the configured backend, conntrack cuts, libvirt
    nwfilters when ``use_nwfilter``)."""
    from flatnet.linux.conntrack import Conntrack
    from flatnet.linux.ipset import IpsetBackend
    from flatnet.linux.iptables import select_backend
    from flatnet.linux.nwfilter import LibvirtNWFilter
    from flatnet.service.firewall import FirewallReconciler, NWFilters

    fw = settings.firewall
    return FirewallReconciler(
        db,
        settings.host,
        fw,
        ipsets=IpsetBackend(fw.prefix),
        iptables=select_backend(settings.iptables_backend),
        conntrack=Conntrack(),
        nwfilters=NWFilters(LibvirtNWFilter)
        if settings.use_nwfilter
        else None,
        verify_interval=settings.daemon.periodic_interval,
        # the database re-read in full every ten periodic intervals
        full_resync_interval=10 * settings.daemon.periodic_interval,
    )


def driver_api(
    settings: Settings, db: Database | None = None
) -> FirewallDriver:
    """nova's firewall-driver methods for a compute driver: they write
    the database and wait for this host's service (never iptables or
    libvirt in the caller's process)."""
    from flatnet.service.firewall_driver import FirewallDriver

    return FirewallDriver(
        db if db is not None else database(settings),
        settings.host,
        settings.daemon.sync_interval,
    )


def network_api(
    settings: Settings,
    db: Database | None = None,
    executor: Executor | None = None,
) -> NetworkAPI:
    """nova's network API for a compute driver (allocate, deallocate,
    network info, migration), on this host; ``executor`` runs its
    blocking database calls (eventlet: ``eventlet.tpool.execute``)."""
    from flatnet.service import network_api as api
    from flatnet.service.wake import path_in

    found = db if db is not None else database(settings)
    return api.NetworkAPI(
        manager(settings, found),
        settings.host,
        interval=settings.daemon.sync_interval,
        executor=executor or api.direct,
        wake_path=path_in(settings.state_path),
    )


def network_host(
    settings: Settings, extra: Sequence[Reconciler] = ()
) -> Daemon:
    """flatnet-network: the loop with, per ``settings.roles``, DHCP and
    the host's rules (network), the instance filters (compute), then
    ``extra`` reconcilers, with the real executors."""
    from flatnet.service import daemon

    db = database(settings)
    parts: list[Reconciler] = []
    if "network" in settings.roles:
        parts += _network_role(settings, db)
    if "compute" in settings.roles:
        parts.append(firewall(settings, db))
    return daemon.Daemon(db, settings.host, [*parts, *extra], settings.daemon)


def _network_role(settings: Settings, db: Database) -> list[Reconciler]:
    """The network host's reconcilers: DHCP (bridge, dnsmasq), rules."""
    from flatnet.linux.dhcp_release import DhcpRelease
    from flatnet.linux.dnsmasq import DnsmasqProcess
    from flatnet.service import dhcp, rules_reconciler

    dhcp_rec = dhcp.DhcpReconciler(
        db,
        settings.host,
        settings.dhcp,
        DnsmasqProcess,
        release=DhcpRelease() if settings.force_dhcp_release else None,
        bridge=BridgeEnsurer(settings.flat_interface),
    )
    # NOTE: plain attributes until DhcpReconciler takes them as
    # constructor parameters.
    dhcp_rec.tuning = settings.dhcp_tuning
    dhcp_rec.ingest_policy = settings.lease_journal
    rules = rules_reconciler.RulesReconciler(
        db,
        settings.host,
        host_rules(settings),
        verify_interval=settings.daemon.periodic_interval,
    )
    return [dhcp_rec, rules]


@dataclasses.dataclass(frozen=True)
class MetadataService:
    """What :func:`flatnet.service.metadata_server.serve` takes."""

    settings: MetadataSettings
    lookup: Callable[[str], InstanceMetadata | None]
    generation: Callable[[], int]
    db: Database


def _vendor_data(path: str | None) -> Mapping[str, Any] | None:
    """nova ``vendordata_jsonfile_path``: a JSON object, read once."""
    if path is None:
        return None
    where = f"[api] vendordata_jsonfile_path = {path!r}"
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(1 << 20))
    except OSError as exc:
        why = exc.strerror
        raise exception.ConfigError(reason=f"{where}: {why}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        why = f"not JSON: {exc}"
        raise exception.ConfigError(reason=f"{where}: {why}") from exc
    if not isinstance(data, dict):
        raise exception.ConfigError(reason=f"{where}: not a JSON object")
    return data


def metadata_service(settings: Settings) -> MetadataService:
    """flatnet-metadata: the server settings (with the vendor data read)
    and a thread-safe lookup (one read transaction per call, from the
    engine's pool) and generation on the database."""
    from flatnet.db import api as db_api

    md = settings.metadata
    vendor_data = _vendor_data(md.vendordata_path)  # before the database
    db = database(settings)
    domain = settings.dhcp.dhcp_domain
    zone = md.availability_zone

    def lookup(ip: str) -> InstanceMetadata | None:
        return db_api.instance_metadata(
            db, ip, domain=domain, availability_zone=zone
        )

    server = dataclasses.replace(md.server, vendor_data=vendor_data)
    return MetadataService(
        server, lookup, lambda: db_api.metadata_generation(db), db
    )
