"""The network host's iptables rules and floating binds, kept in line
with the database by the flatnet-network loop (component ``rules``).

The host's rules are one whole-host RuleSet (every network's
SNAT/DHCP/metadata rules plus every floating IP), so the readiness keys
are every ``network:<id>`` (its generation) and ``rules`` (the
floating-IP generation): the daemon calls :meth:`RulesReconciler.sync`
once with the keys that moved and that one sync makes them all live.

* between changes, HostRules trusts its cache of what it applied (a sync
  with no change costs no subprocess); every ``verify_interval`` seconds
  ``poll`` reports every key dirty and the sync re-reads the live rules,
  so a flushed chain or a deleted jump is repaired (nova
  linux_net.IptablesManager never re-read the live tables).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from flatnet.db import api as db_api
from flatnet.linux import sysctl
from flatnet.model import FloatingIp
from flatnet.service.daemon import Outcome, Polled
from flatnet.service.host_rules import HostRules

LOG = logging.getLogger(__name__)

#: The readiness key of the floating-IP rules (generation scope "rules").
RULES_KEY = "rules"


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
        self._next_verify = 0.0
        self._verify = False

    def prepare(self) -> None:
        """nova's initialize_gateway_device: the host routes."""
        self.ip_forward()

    def close(self) -> None:
        """Nothing runs in the background."""

    def poll(self) -> Polled:
        wanted = {
            db_api.network_key(n): g
            for n, g in db_api.network_generations(self.db).items()
        }
        wanted[RULES_KEY] = db_api.rules_generation(self.db)
        now = self.clock()
        if now < self._next_verify:
            return Polled(wanted)
        self._next_verify = now + self.verify_interval
        self._verify = True  # the next sync re-reads the live rules
        return Polled(wanted, frozenset(wanted))

    def sync(self, keys: Mapping[str, int]) -> dict[str, Outcome]:
        """Sync the whole host once; every key is live after it."""
        generation = db_api.rules_generation(self.db)
        networks = db_api.network_list(self.db)
        floating = host_floating(db_api.floating_list(self.db), self.host)
        self.rules.sync(networks, floating, verify=self._verify)
        self._verify = False
        applied = {db_api.network_key(n.id): n.generation for n in networks}
        applied[RULES_KEY] = generation
        return {key: Outcome(True, applied.get(key)) for key in keys}
