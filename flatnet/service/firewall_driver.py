"""nova's firewall-driver API over the database (for a compute driver).

The method names and arguments are nova's (nova ``virt/firewall.py
FirewallDriver``, ``virt/libvirt/firewall.py IptablesFirewallDriver``,
``virt/libvirt/driver.py ensure_filtering_rules_for_instance``), but no
method runs iptables, ipset or libvirt in the caller's process: the
database already holds the desired state (instances placed on a host,
their security groups and addresses), the host's flatnet-network
(compute role, component ``firewall``) applies it, and these methods
WAIT until that host reports the instance's key ``instance:<uuid>`` live
at the current firewall generation. One writer of iptables per host
(nova needed an external lock file for its two).

``instance`` is an instance uuid or any object with a ``uuid``
attribute (a nova Instance); ``network_info`` is accepted and ignored
(the database is the source of truth).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from flatnet import exception
from flatnet.db import api as db_api

LOG = logging.getLogger(__name__)
COMPONENT = "firewall"
#: nova ``live_migration_retry_count`` (30) x 1 s: the bound of
#: ``ensure_filtering_rules_for_instance``
ENSURE_TIMEOUT = 30.0


def instance_uuid(instance: object) -> str:
    """A uuid string, or the ``uuid`` of a nova-like instance object."""
    uuid = instance
    if not isinstance(instance, str):
        uuid = getattr(instance, "uuid", None)
    if not isinstance(uuid, str) or not uuid:
        raise exception.InvalidInput(reason=f"not an instance: {instance!r}")
    return uuid


def host_key(host: str) -> str:
    """The readiness key of a host's filter frame (service.firewall)."""
    return f"host:{host}"


def has_compute_role(db: db_api.Database, host: str) -> bool:
    """Whether ``host`` runs the compute role (has ever reported its
    filter frame)."""
    return db_api.host_state(db, host, COMPONENT, host_key(host)) is not None


def wait_key(  # noqa: PLR0913 - what, where, how long
    db: db_api.Database,
    host: str,
    key: str,
    target: int,
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
) -> None:
    """Return once ``host`` applied ``key`` (component firewall) at
    ``target`` or later; NotReady after ``timeout`` naming the cause
    (the host's last_error, no report ever, or how far behind)."""
    deadline = time.monotonic() + timeout
    while True:
        state = db_api.host_state(db, host, COMPONENT, key)
        if state is not None and state.applied_generation >= target:
            return
        if time.monotonic() >= deadline:
            raise exception.NotReady(
                f"the firewall filter for {what} was not ready after "
                f"{timeout:.1f} s: host {host}: {_why(state, target)}",
                what="firewall",
                timeout=timeout,
            )
        time.sleep(interval)


def _why(state: db_api.KeyState | None, target: int) -> str:
    if state is None:
        return "no flatnet-network with the compute role has reported it"
    if state.last_error:
        return state.last_error
    return f"host is at generation {state.applied_generation}, need {target}"


def wait_instances(
    db: db_api.Database, host: str, uuids: Iterable[str], timeout: float
) -> None:
    """Wait for every instance's filter on ``host`` at the generation
    committed so far."""
    target = db_api.firewall_generation(db)
    deadline = time.monotonic() + timeout
    for uuid in uuids:
        left = max(0.0, deadline - time.monotonic())
        wait_key(db, host, db_api.instance_key(uuid), target, left, uuid)


class FirewallDriver:
    """nova's firewall-driver methods for the instances of ``host``."""

    def __init__(
        self,
        db: db_api.Database,
        host: str,
        interval: float = 0.05,
        timeout: float = ENSURE_TIMEOUT,
    ) -> None:
        self.db, self.host = db, host
        self.interval, self.timeout = interval, timeout

    def _wait(self, instance: object, timeout: float | None = None) -> None:
        uuid = instance_uuid(instance)
        placed = db_api.instance_get(self.db, uuid).host
        if placed != self.host and not self._arriving(uuid):
            raise exception.InvalidInput(
                reason=f"instance {uuid} is on {placed}, not {self.host}"
            )
        target = db_api.firewall_generation(self.db)
        wait_key(
            self.db, self.host, db_api.instance_key(uuid), target,
            self.timeout if timeout is None else timeout, uuid,
            interval=self.interval,
        )  # fmt: skip

    def _arriving(self, uuid: str) -> bool:
        """Whether the instance is being live-migrated to this host."""
        moving = db_api.migration_get(self.db, uuid)
        return moving is not None and moving.dest_compute == self.host

    def setup_basic_filtering(
        self, instance: object, network_info: object = None
    ) -> None:
        """The instance's nwfilters (and chain) are live on this host."""
        self._wait(instance)

    def prepare_instance_filter(
        self, instance: object, network_info: object = None
    ) -> None:
        """The instance's iptables chain is live on this host."""
        self._wait(instance)

    def apply_instance_filter(
        self, instance: object, network_info: object = None
    ) -> None:
        """nova: a no-op (prepare_instance_filter applied it)."""

    def unfilter_instance(
        self, instance: object, network_info: object = None
    ) -> None:
        """Wait for the host to apply the current state. On a live
        migration's destination (nova ``rollback_live_migration_at_
        destination`` destroys the guest there) the migration is rolled
        back first: the filter goes here, the source keeps its own.
        Otherwise the filter goes when the instance is deleted or placed
        on another host (database writes of their own); until then it
        stays."""
        uuid = instance_uuid(instance)
        if db_api.migration_abort(self.db, uuid, self.host):
            LOG.info("live migration of %s to %s rolled back", uuid, self.host)
        elif uuid in db_api.host_instances(self.db, self.host):
            LOG.info(
                "instance %s is still placed on %s: its filter stays "
                "until it is deleted or moved", uuid, self.host,
            )  # fmt: skip
        self.refresh_security_group_rules(None)

    def instance_filter_exists(
        self, instance: object, network_info: object = None
    ) -> bool:
        """True when this host reports the instance's filter live (nova:
        every VIF's nwfilter can be looked up)."""
        uuid = instance_uuid(instance)
        if uuid not in db_api.host_instances(self.db, self.host):
            return False
        key = db_api.instance_key(uuid)
        state = db_api.host_state(self.db, self.host, COMPONENT, key)
        return state is not None and state.last_error is None

    def refresh_security_group_rules(self, security_group_id: object) -> None:
        """Every instance of this host has the rules committed so far."""
        target = db_api.firewall_generation(self.db)
        wait_key(
            self.db, self.host, host_key(self.host), target, self.timeout,
            f"host {self.host}", interval=self.interval,
        )  # fmt: skip

    def refresh_instance_security_rules(self, instance: object) -> None:
        """The instance has the rules committed so far."""
        self._wait(instance)

    def ensure_filtering_rules_for_instance(
        self, instance: object, network_info: object = None
    ) -> None:
        """nova libvirt: the instance's filters are live on this host,
        waited for up to 30 s (``live_migration_retry_count``); NotReady
        after it. Called on a live migration's destination (nova
        ``pre_live_migration``) for an instance placed elsewhere, it
        starts the migration here: the instance is filtered on both
        hosts until ``migrate_instance_finish`` (or a rollback)."""
        uuid = instance_uuid(instance)
        db_api.migration_begin(self.db, uuid, self.host)
        self._wait(uuid, ENSURE_TIMEOUT)
