"""A stand-in flatnet-network for the sharded kill -9 test: the real
daemon loop and DhcpReconciler against the test's database, shards in
the test's host namespace (the rig of ``test_dhcp_shards_growth``).

Usage: python -m tests.functional.shard_reconciler <json> with db (URL),
networks_path, host (namespace); runs until killed.
"""

from __future__ import annotations

import json
import sys
import threading

from flatnet.db import api
from flatnet.plan import dnsmasq as plan
from flatnet.service import daemon, dhcp
from flatnet.service.dhcp_keeper import DhcpTuning
from tests.functional.test_dhcp_shards_growth import HostDnsmasq


def main(raw: str) -> int:
    spec = json.loads(raw)
    db = api.Database(spec["db"])
    settings = plan.DhcpSettings(
        networks_path=spec["networks_path"],
        dhcpbridge="/bin/true",
        dhcp_lease_time=120,
        dhcp_shard_hosts=2,
    )
    host = spec["host"]
    rec = dhcp.DhcpReconciler(
        db, "nethost", settings, lambda b, p: HostDnsmasq(b, p, host)
    )
    rec.tuning = DhcpTuning(keeper_interval=0)
    rec.sharded.place(host)
    daemon.Daemon(db, "nethost", [rec]).run(threading.Event())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
