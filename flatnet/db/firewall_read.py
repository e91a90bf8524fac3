"""Which instances one compute host filters, and their readiness keys.

The firewall's state itself is read by
:func:`flatnet.db.firewall_state.host_firewall` and its generation by
:func:`flatnet.db.secgroup_members.firewall_generation` (scope
``firewall``, bumped in the same transaction as every change that can
alter a host's filters: security groups, rules, membership, instance
create/delete/move, fixed IP allocation and deallocation).
"""

from __future__ import annotations

from sqlalchemy import select

from flatnet.db import models
from flatnet.db.engine import Database
from flatnet.db.live_migration import filtered_on
from flatnet.db.rows import INSTANCES
from flatnet.db.secgroups import FIREWALL_COUNTER

__all__ = [
    "ASSOC",
    "FIREWALL_COUNTER",
    "GROUPS",
    "RULES",
    "host_instances",
    "instance_key",
]

GROUPS = models.SECURITY_GROUPS
RULES = models.SECURITY_GROUP_RULES
ASSOC = models.SECURITY_GROUP_INSTANCES


def instance_key(uuid: str) -> str:
    """The readiness key of an instance's filters (component firewall)."""
    return f"instance:{uuid}"


def host_instances(db: Database, host: str) -> list[str]:
    """The uuids of the live instances ``host`` filters: placed on it,
    or being live-migrated to it (:mod:`flatnet.db.live_migration`)."""
    with db.read() as conn:
        found = conn.execute(
            select(INSTANCES.c.uuid).where(
                filtered_on(host), INSTANCES.c.deleted == 0
            )
        ).scalars()
        return sorted(found)
