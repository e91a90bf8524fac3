"""HostRules above fake executors: repair checks before it changes
anything, the daemon's sync names a missing device, and what a sync or a
repair did reads as a sentence, not a dataclass repr."""

from __future__ import annotations

import logging

import netaddr
import pytest

from flatnet import exception
from flatnet.model import FloatingIp
from flatnet.plan.host_rules import HostRulesSettings
from flatnet.service.host_rules import HostRules, RepairResult, SyncResult
from tests.builders import flat_network
from tests.fakes_iptables import FakeIptables

NET = flat_network("10.0.0.0/24")


class FakeAddresses:
    """Devices -> their /32s; a missing device raises DeviceNotFound."""

    def __init__(self, *devices: str) -> None:
        self.devices: dict[str, set[netaddr.IPAddress]] = {
            d: set() for d in ("lo", *devices)
        }

    def _dev(self, device: str) -> set[netaddr.IPAddress]:
        if device not in self.devices:
            raise exception.DeviceNotFound(device=device)
        return self.devices[device]

    def host_addresses(self, device):
        return set(self._dev(device))

    def ensure_address(self, device, address, scope="global"):
        self._dev(device).add(address)

    def delete_address(self, device, address):
        self._dev(device).discard(address)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def announce(self, device, address, count):
        self.calls.append(("announce", device, str(address), count))

    def forget_connections(self, fixed):
        self.calls.append(("forget", str(fixed)))
        return 1


def fip(interface: str = "eth9", fixed: str | None = "10.0.0.3"):
    return FloatingIp(
        id=1,
        address=netaddr.IPAddress("172.24.4.3"),
        pool="nova",
        interface=interface,
        fixed_address=None if fixed is None else netaddr.IPAddress(fixed),
    )


def rules(addresses, **settings) -> tuple[HostRules, FakeIptables]:
    fake, recorder = FakeIptables(), Recorder()
    base = {"routing_source_ip": "172.24.4.1", "send_arp_for_ha": True}
    host = HostRules(
        HostRulesSettings(**{**base, **settings}),
        fake,
        addresses,
        arping=recorder,
        conntrack=recorder,
    )
    return host, fake


def test_repair_with_a_missing_public_interface_changes_nothing():
    addresses = FakeAddresses()
    host, fake = rules(addresses, public_interface="eth1")
    with pytest.raises(exception.ConfigError) as err:
        host.repair([NET], [fip()])
    assert "public_interface = eth1: no such device" in str(err.value)
    assert "172.24.4.3" in str(err.value)
    assert "nothing was changed" in str(err.value)
    assert fake.commits == 0
    assert addresses.devices == {"lo": set()}
    assert host.verify([NET], [fip()])[-1].startswith(
        "! public_interface = eth1: no such device"
    )


def test_a_floating_ips_own_missing_interface_is_named():
    host, fake = rules(FakeAddresses())
    with pytest.raises(exception.ConfigError, match="its interface eth9"):
        host.repair([NET], [fip()])
    assert fake.commits == 0


def test_daemon_sync_applies_the_rules_then_names_the_missing_device():
    addresses = FakeAddresses()
    host, fake = rules(addresses, public_interface="eth1")
    with pytest.raises(exception.ConfigError, match="public_interface"):
        host.sync([NET], [fip()])
    assert fake.commits == 3  # DHCP/NAT rules are live all the same
    addresses.devices["eth1"] = set()
    result = host.sync([NET], [fip()], verify=True)
    assert result.bound == ("172.24.4.3 eth1",)
    assert host.verify([NET], [fip()]) == []


def test_repair_reports_what_it_did(caplog):
    addresses = FakeAddresses("eth1")
    host, _ = rules(addresses, public_interface="eth1")
    caplog.set_level(logging.INFO, "flatnet.service.host_rules")
    result = host.repair([NET], [fip()])
    assert "+addr 172.24.4.3/32 dev eth1" in result.differences
    assert "+addr 169.254.169.254/32 dev lo" in result.differences
    assert str(result) == (
        f"repaired {len(result.differences)} difference(s): iptables "
        "filter, nat, mangle updated; added 169.254.169.254/32 dev lo; "
        "bound 172.24.4.3 eth1"
    )
    assert "SyncResult(" not in caplog.text
    assert "Host rules synced: iptables filter, nat, mangle" in caplog.text
    assert str(host.repair([NET], [fip()])) == "nothing to repair"


def test_sync_result_reads_as_a_sentence():
    assert str(SyncResult()) == "nothing changed"
    assert str(
        SyncResult(("nat",), (), ("172.24.4.3 eth1",), ("10.0.0.3",))
    ) == ("iptables nat updated; unbound 172.24.4.3 eth1; "
          "conntrack flushed for 10.0.0.3")  # fmt: skip
    assert str(RepairResult(())) == "nothing to repair"
