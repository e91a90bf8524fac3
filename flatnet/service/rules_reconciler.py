"""The network host's iptables rules and floating binds, kept in line
with the database by the flatnet-network loop.

The daemon reconciles per network; the host's rules are one whole-host
RuleSet (every network's SNAT/DHCP/metadata rules plus every floating
IP). This adapter turns "something changed" into one HostRules.sync per
loop iteration, whichever networks asked:

* a network's generation moved (new network) or the floating-IP rules
  generation moved (associate/disassociate): ``poll`` reports every
  network, ``sync_network`` syncs once and answers the rest from memory;
* between those, HostRules trusts its cache of what it applied (a sync
  with no change costs no subprocess); every ``verify_interval`` seconds
  a verifying sync re-reads the live rules, so a flushed chain or a
  deleted jump is repaired (nova linux_net.IptablesManager never
  re-read the live tables).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from flatnet.db import api as db_api
from flatnet.linux import sysctl
from flatnet.model import FloatingIp, Network
from flatnet.service.host_rules import HostRules

LOG = logging.getLogger(__name__)


def host_floating(
    floating: Sequence[FloatingIp], host: str
) -> list[FloatingIp]:
    """Floating IPs this host NATs (associated here) plus unassociated
    ones (so that a stale bind of ours is recognised and removed)."""
    return [f for f in floating if f.host in (None, host)]


class RulesReconciler:
    """Reconciler (service.daemon protocol) for the host's rules."""

    component = "rules"

    def __init__(
        self,
        db: db_api.Database,
        host: str,
        rules: HostRules,
        verify_interval: float = 60.0,
        ip_forward: Callable[[], bool] = sysctl.ensure_ip_forward,
    ) -> None:
        self.db = db
        self.host = host
        self.rules = rules
        self.verify_interval = verify_interval
        self.ip_forward = ip_forward
        self.clock: Callable[[], float] = time.monotonic
        self._seen_generation: int | None = None
        self._synced: tuple[object, ...] | None = None
        self._next_verify = 0.0
        self._verify = False

    def prepare(self) -> None:
        """nova's initialize_gateway_device: the host routes."""
        self.ip_forward()

    def close(self) -> None:
        """Nothing runs in the background."""

    def poll(self) -> set[int]:
        generation = db_api.rules_generation(self.db)
        now = self.clock()
        if now >= self._next_verify:
            self._next_verify = now + self.verify_interval
            self._synced = None  # force a sync that re-reads live rules
            self._verify = True
        elif generation == self._seen_generation:
            return set()
        self._seen_generation = generation
        return set(db_api.network_generations(self.db))

    def sync_network(self, network: Network) -> bool:
        """Sync the whole host (once per state); always live after."""
        generation = db_api.rules_generation(self.db)
        networks = db_api.network_list(self.db)
        key = (generation, tuple((n.id, n.generation) for n in networks))
        if key == self._synced:
            return True
        floating = host_floating(db_api.floating_list(self.db), self.host)
        self.rules.sync(networks, floating, verify=self._verify)
        self._synced = key
        self._verify = False
        return True
