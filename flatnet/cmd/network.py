"""flatnet-network: the network host daemon (nova-network's role).

``flatnet-network --config-file F [--once]`` runs in the foreground:
it parses the config, sets up logging on stderr, wires the real
executors (netlink bridge, dnsmasq, dhcp_release, iptables, addresses)
into the reconcilers
and runs :class:`flatnet.service.daemon.Daemon` until SIGTERM/SIGINT.
dnsmasq processes are left running on exit; the next start adopts them.
``--once`` reconciles every network once and exits (0 if all live).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from oslo_config import cfg

from flatnet import conf
from flatnet.cmd import rules_config
from flatnet.db import api as db_api
from flatnet.linux.bridge import NetlinkBridge
from flatnet.linux.dhcp_release import DhcpRelease
from flatnet.linux.dnsmasq import DnsmasqProcess
from flatnet.model import Network
from flatnet.plan import bridge as bridge_plan
from flatnet.plan import dnsmasq as plan
from flatnet.service import daemon, dhcp, rules_reconciler

LOG = logging.getLogger(__name__)

_CLI_OPTS = [
    cfg.BoolOpt(
        "once", default=False, help="Reconcile every network once, then exit."
    ),
    cfg.BoolOpt("debug", short="d", default=False, help="Log at DEBUG level."),
]


class BridgeEnsurer:
    """Adapter: ensure the bridge (and gateway address) of a network."""

    def __init__(self, flat_interface: str | None) -> None:
        self.flat_interface = flat_interface
        self.backend = NetlinkBridge()

    def ensure(self, network: Network) -> None:
        spec = bridge_plan.bridge_spec(network, self.flat_interface)
        self.backend.ensure_bridge(spec)


def dhcp_settings(conf_: cfg.ConfigOpts) -> plan.DhcpSettings:
    """Copy the DHCP options from CONF into the planners' settings."""
    return plan.DhcpSettings(
        networks_path=os.path.abspath(conf_.networks_path),
        dhcpbridge=conf_.dhcpbridge,
        dhcpbridge_flagfile=tuple(conf_.dhcpbridge_flagfile),
        dnsmasq_config_file=conf_.dnsmasq_config_file,
        dhcp_lease_time=conf_.dhcp_lease_time,
        dhcp_domain=conf_.dhcp_domain,
        dns_server=tuple(conf_.dns_server),
        use_network_dns_servers=conf_.use_network_dns_servers,
        use_single_default_gateway=conf_.use_single_default_gateway,
        share_dhcp_address=conf_.share_dhcp_address,
        dhcp_hostsdir=conf_.dhcp_hostsdir,
        dhcp_script_fast_path=conf_.dhcp_script_fast_path,
    )


def build(
    conf_: cfg.ConfigOpts, extra: Sequence[daemon.Reconciler] = ()
) -> daemon.Daemon:
    """The daemon with real executors: DHCP, then the host's rules,
    then ``extra``."""
    db = db_api.Database(conf_.database.connection)
    reconciler = dhcp.DhcpReconciler(
        db,
        conf_.host,
        dhcp_settings(conf_),
        DnsmasqProcess,
        release=DhcpRelease() if conf_.force_dhcp_release else None,
        bridge=BridgeEnsurer(conf_.flat_interface),
    )
    timing = daemon.DaemonTiming(
        sync_interval=conf_.sync_interval,
        periodic_interval=conf_.periodic_interval,
        disassociate_timeout=conf_.fixed_ip_disassociate_timeout,
    )
    rules = rules_reconciler.RulesReconciler(
        db,
        conf_.host,
        rules_config.build_host_rules(conf_),
        verify_interval=conf_.periodic_interval,
    )
    return daemon.Daemon(db, conf_.host, [reconciler, rules, *extra], timing)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        LOG.info("signal %d received, stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: Sequence[str] | None = None) -> int:
    conf_ = cfg.ConfigOpts()
    conf_.register_cli_opts(_CLI_OPTS)
    conf.parse(list(sys.argv[1:] if argv is None else argv), conf=conf_)
    logging.basicConfig(
        level=logging.DEBUG if conf_.debug else logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s",
    )
    service = build(conf_)
    if conf_.once:
        for rec in service.reconcilers:
            rec.prepare()
        service.run_once()
        return 0
    stop = threading.Event()
    _stop_on_signals(stop)
    LOG.info("flatnet-network starting on host %s", conf_.host)
    service.run(stop)
    LOG.info("flatnet-network stopped")
    return 0
