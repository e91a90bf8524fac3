"""FlatDHCPManager: allocation orchestration (nova.network.manager
NetworkManager.allocate_for_instance, deallocate_for_instance and
_do_create_networks).

Validates operator input with the pure modules (:mod:`flatnet.ipam`,
:mod:`flatnet.mac`, :mod:`flatnet.hostname`), then makes one short DB call
per operation through :mod:`flatnet.db.api`. Host changes (hosts files,
DHCP releases) are applied by the network daemon, which notices the
bumped ``networks.generation``; :func:`wait_ready` waits for it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import random
import time
import uuid as uuidlib
from collections.abc import Sequence

import netaddr

from flatnet import exception, hostname, ipam, mac, model
from flatnet.db import api as db_api
from flatnet.plan.boot_data import BootData
from flatnet.plan.bridge import validate_device_name
from flatnet.service import firewall_driver
from flatnet.service.settings import (
    ManagerSettings as ManagerSettings,  # noqa: PLC0414
)

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkRequest:
    """``network create`` input as the operator typed it (strings)."""

    label: str
    cidr: str
    bridge: str | None = None
    bridge_interface: str | None = None
    dns1: str | None = None
    dns2: str | None = None
    gateway: str | None = None
    dhcp_server: str | None = None
    fixed_cidr: str | None = None
    mtu: int | None = None
    uuid: str | None = None
    project_id: str | None = None
    multi_host: bool | None = None


#: Labels, pools, project ids, host names: see hostname.check_text.
check_text = hostname.check_text


def _check_uuid(value: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except ValueError as exc:
        raise exception.InvalidInput(
            reason=f"{value!r} is not a UUID"
        ) from exc


def _check_mtu(value: int | None) -> int | None:
    if value is not None and not 68 <= value <= 65535:
        raise exception.InvalidInput(reason=f"MTU {value} is not in 68-65535")
    return value


class FlatDHCPManager:
    """Network and fixed-IP operations on one database.

    ``rng`` draws MAC addresses (tests pass a seeded ``random.Random``).
    """

    def __init__(
        self,
        db: db_api.Database,
        settings: ManagerSettings | None = None,
        rng: mac.RandomSource | None = None,
    ) -> None:
        self.db = db
        self.settings = settings or ManagerSettings()
        self.rng: mac.RandomSource = rng or random.SystemRandom()
        # ident -> network, saving a read transaction per allocation. A
        # stale entry (network deleted) fails in the allocation's own
        # transaction with NetworkNotFound and is looked up again once.
        self._network_cache: dict[str, model.Network] = {}

    # --- networks -------------------------------------------------------
    def create_network(self, req: NetworkRequest) -> model.Network:
        """Validate and create a flat network (nova defaults for bridge,
        bridge_interface, dns1, multi_host). Raises InvalidInput
        subclasses, CidrConflict, DuplicateNetwork."""
        label = check_text(req.label, "label")
        bridge = req.bridge or self.settings.flat_network_bridge
        if not bridge:
            raise exception.InvalidInput(
                reason="a bridge is required (--bridge or flat_network_bridge)"
            )
        iface = req.bridge_interface or self.settings.flat_interface
        dns1 = req.dns1 or self.settings.flat_network_dns
        layout = ipam.network_layout(
            req.cidr,
            gateway=req.gateway,
            dhcp_server=req.dhcp_server,
            fixed_cidr=req.fixed_cidr,
            max_size=self.settings.max_network_size,
        )
        return db_api.network_create(
            self.db,
            layout,
            label=label,
            bridge=validate_device_name(bridge),
            bridge_interface=(validate_device_name(iface) if iface else None),
            dns1=ipam.parse_address(dns1) if dns1 else None,
            dns2=ipam.parse_address(req.dns2) if req.dns2 else None,
            mtu=_check_mtu(req.mtu),
            uuid=_check_uuid(req.uuid) if req.uuid else None,
            project_id=(
                check_text(req.project_id, "project id")
                if req.project_id
                else None
            ),
            multi_host=(
                self.settings.multi_host
                if req.multi_host is None
                else req.multi_host
            ),
            share_address=self.settings.share_dhcp_address,
        )

    # --- instances ------------------------------------------------------
    def _networks_for(self, network: str | None) -> list[model.Network]:
        if network is not None:
            if network not in self._network_cache:
                found = db_api.network_get(self.db, network)
                self._network_cache[network] = found
            return [self._network_cache[network]]
        networks = db_api.network_list(self.db)
        if not networks:
            raise exception.NetworkNotFound(network="(none defined)")
        return networks

    def allocate_for_instance(
        self,
        name: str,
        mac_address: str | None = None,
        network: str | None = None,
        host: str | None = None,
        security_groups: Sequence[str] = (),
        boot: BootData | None = None,
    ) -> list[model.NetworkInfo]:
        """Create instance ``name`` with one VIF and fixed IP per network
        (``network`` given: just that one; otherwise every network, as
        nova does with no requested networks), stored with ``boot``
        (user data and key, validated by plan.boot_data) in the same
        transaction.

        A requested MAC gets one attempt (MacAddressInUse); random MACs
        are retried ``create_unique_mac_address_attempts`` times, then
        MacAddressGenerationFailed. The instance joins
        ``security_groups`` (names; NotFound for an unknown one) in the
        same transaction. Each returned info's
        ``network.generation`` is what :func:`wait_ready` waits for.
        Raises InvalidHostname, InvalidMacAddress, NetworkNotFound,
        DuplicateInstance, NoMoreFixedIps; nothing is written then.
        """
        spec = db_api.InstanceSpec(
            hostname=hostname.validate_hostname(name),
            display_name=name,
            host=check_text(host, "host") if host else None,
            security_groups=tuple(security_groups),
            boot=boot or BootData(),
        )
        fixed_mac = mac.parse_mac(mac_address) if mac_address else None
        networks = self._networks_for(network)
        if fixed_mac is not None and len(networks) > 1:
            raise exception.InvalidInput(
                reason="--mac needs --network when several networks exist"
            )
        try:
            return self._retry_macs(spec, networks, fixed_mac)
        except exception.NetworkNotFound:
            if network is None or network not in self._network_cache:
                raise
            del self._network_cache[network]
            networks = self._networks_for(network)
            return self._retry_macs(spec, networks, fixed_mac)

    def _retry_macs(
        self,
        spec: db_api.InstanceSpec,
        networks: Sequence[model.Network],
        fixed_mac: netaddr.EUI | None,
    ) -> list[model.NetworkInfo]:
        attempts = self.settings.create_unique_mac_address_attempts
        for _attempt in range(1 if fixed_mac is not None else attempts):
            requests = [
                db_api.VifRequest(
                    network_id=n.id,
                    mac=fixed_mac or mac.generate_mac(self.rng),
                )
                for n in networks
            ]
            try:
                return db_api.instance_create_allocated(
                    self.db, spec, requests
                )
            except exception.MacAddressInUse:
                if fixed_mac is not None:
                    raise
                LOG.info(
                    "MAC collision for instance %s, retrying", spec.hostname
                )
        raise exception.MacAddressGenerationFailed(attempts=attempts)

    def deallocate_for_instance(
        self, ident: str
    ) -> list[model.FixedIpRelease]:
        """Deallocate an instance (by uuid or name) in nova's way and
        return what the daemon may have to dhcp_release. Raises
        InstanceNotFound."""
        instance = db_api.instance_get(self.db, ident)
        return db_api.deallocate_for_instance(self.db, instance.uuid)


def wait_ready(
    db: db_api.Database,
    infos: Sequence[model.NetworkInfo],
    host: str,
    timeout: float,
    *,
    interval: float = 0.05,
) -> None:
    """Return once ``host`` has applied (component ``dhcp``, key
    ``network:<id>``) at least the generation each allocation committed.
    Raises NotReady after ``timeout`` seconds naming the real cause: the
    error the host recorded for that key (a full disk, dnsmasq not
    answering...), or that it never reported, or how far behind it is
    and since when. Then, on each instance's host that runs the compute
    role, the instance's filter (component ``firewall``, key
    ``instance:<uuid>``) at the firewall generation committed so far."""
    deadline = time.monotonic() + timeout
    for info in infos:
        target = info.network.generation
        key = db_api.network_key(info.network.id)
        while True:
            state = db_api.host_state(db, host, "dhcp", key)
            if state is not None and state.applied_generation >= target:
                break
            if time.monotonic() >= deadline:
                net = info.network
                raise exception.NotReady(
                    f"DHCP for {info.instance.hostname} was not ready "
                    f"after {timeout:.1f} s: host {host}, network "
                    f"{net.id} ({net.bridge}): {_not_ready(state, target)}",
                    what="dhcp",
                    timeout=timeout,
                )
            time.sleep(interval)
    _wait_filters(db, infos, max(0.0, deadline - time.monotonic()))


def _wait_filters(
    db: db_api.Database, infos: Sequence[model.NetworkInfo], timeout: float
) -> None:
    """The instances' filters, on each instance's host that runs the
    compute role (component ``firewall``)."""
    by_host: dict[str, set[str]] = {}
    for info in infos:
        if info.instance.host:
            by_host.setdefault(info.instance.host, set()).add(
                info.instance.uuid
            )
    deadline = time.monotonic() + timeout
    for host, uuids in sorted(by_host.items()):
        if firewall_driver.has_compute_role(db, host):
            left = max(0.0, deadline - time.monotonic())
            firewall_driver.wait_instances(db, host, sorted(uuids), left)


def _not_ready(state: db_api.KeyState | None, target: int) -> str:
    if state is None:
        return "no flatnet-network daemon has ever reported for it"
    if state.last_error:
        return state.last_error
    text = f"host is at generation {state.applied_generation}, need {target}"
    if state.updated_at is not None:
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        age = (now - state.updated_at).total_seconds()
        text += f" (its last report was {age:.0f} s ago)"
    return text
