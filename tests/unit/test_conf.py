"""flatnet.conf: a real nova-network nova.conf loads as it is."""

from __future__ import annotations

import pathlib

import pytest
from oslo_config import cfg

from flatnet import conf

NOVA_CONF = str(pathlib.Path(__file__).parent / "data" / "nova.conf")


@pytest.fixture
def nova() -> cfg.ConfigOpts:
    return conf.parse(["--config-file", NOVA_CONF], default_config_files=[])


def test_nova_network_options_are_read(nova) -> None:
    assert nova.flat_network_bridge == "br100"
    assert nova.flat_interface == "eth1"
    assert nova.public_interface == "eth0"
    assert nova.my_ip == "192.0.2.10"
    assert nova.routing_source_ip == "192.0.2.10"
    assert nova.metadata_host == "192.0.2.10"
    assert nova.metadata_port == 8775
    assert nova.dhcpbridge == "/usr/bin/nova-dhcpbridge"
    assert nova.dhcpbridge_flagfile == ["/etc/nova/nova.conf"]
    assert nova.dhcp_lease_time == 3600
    assert nova.force_dhcp_release is True
    assert nova.state_path == "/var/lib/nova"
    assert nova.fixed_ip_disassociate_timeout == 600
    assert nova.create_unique_mac_address_attempts == 5
    assert nova.multi_host is False


def test_multi_valued_dns_server_keeps_both_values_in_order(nova) -> None:
    assert nova.dns_server == ["192.0.2.53", "198.51.100.53"]


def test_unknown_options_and_sections_are_ignored(nova) -> None:
    with pytest.raises(cfg.NoSuchOptError):
        nova.compute_driver  # noqa: B018 - the lookup is the test
    assert nova.database.connection.startswith("mysql+pymysql://")


def test_defaults_substitute_other_options(tmp_path) -> None:
    path = tmp_path / "flatnet.conf"
    path.write_text("[DEFAULT]\nmy_ip = 203.0.113.7\nstate_path = /srv/fn\n")
    c = conf.parse(["--config-file", str(path)], default_config_files=[])
    assert c.routing_source_ip == "203.0.113.7"
    assert c.metadata_host == "203.0.113.7"
    assert c.database.connection == "sqlite:////srv/fn/flatnet.sqlite"
    assert c.networks_path == "/srv/fn/networks"


def test_dns_server_lists_are_not_shared_between_configs() -> None:
    """nova linux_net._dnsmasq_cmd (dns_servers = CONF.dns_server, never
    fixed): appending to CONF.dns_server leaked into later
    dnsmasq launches. Each ConfigOpts has its own list, and a copy taken
    by a caller can be extended without touching the option."""
    first = conf.parse(["--config-file", NOVA_CONF], default_config_files=[])
    second = conf.parse(["--config-file", NOVA_CONF], default_config_files=[])
    servers = list(first.dns_server)
    servers.append("8.8.4.4")
    assert first.dns_server == ["192.0.2.53", "198.51.100.53"]
    assert second.dns_server == ["192.0.2.53", "198.51.100.53"]
    assert first.dns_server is not second.dns_server


def test_oslo_returns_the_cached_list_object(nova) -> None:
    """Documents the hazard behind that nova bug: oslo.config hands out
    its cached list, so code building dnsmasq argv must copy it
    (list(...)) before appending network DNS servers."""
    assert nova.dns_server is nova.dns_server


def test_unreadable_config_is_an_error(tmp_path) -> None:
    with pytest.raises(cfg.ConfigFilesNotFoundError):
        conf.parse(
            ["--config-file", str(tmp_path / "missing.conf")],
            default_config_files=[],
        )
