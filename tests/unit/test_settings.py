"""flatnet.settings: one typed object, every option validated at load."""

from __future__ import annotations

import pathlib

import pytest

from flatnet import exception, settings
from flatnet.settings import config_files, reader, sections

NOVA_CONF = str(pathlib.Path(__file__).parent / "data" / "nova.conf")


def _write(tmp_path, text: str, name: str = "flatnet.conf") -> str:
    path = tmp_path / name
    path.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path}/state\n{text}\n"
        if not text.startswith("[")
        else text
    )
    return str(path)


def _load(tmp_path, text: str) -> settings.Settings:
    return settings.load([_write(tmp_path, text)])


BAD = [
    ("sync_interval = fast", "sync_interval", "could not convert"),
    ("sync_interval = nan", "sync_interval", "finite"),
    ("sync_interval = inf", "sync_interval", ""),
    ("max_backoff = 0", "max_backoff", ""),
    ("metadata_port = 99999", "metadata_port", "65535"),
    ("dhcp_lease_time = 10", "dhcp_lease_time", "120"),
    ("public_interface = eth 0", "public_interface", "device name"),
    ("flat_network_bridge = br\\x", "flat_network_bridge", ""),
    ("flat_network_dns = 8.8.8", "flat_network_dns", "IPv4"),
    ("my_ip = me", "my_ip", "IPv4"),
    ("routing_source_ip = 1.2.3.400", "routing_source_ip", ""),
    ("metadata_host = ::1", "metadata_host", ""),
    ("dmz_cidr = 10.0.0.0/33", "dmz_cidr", ""),
    ("dns_server = resolver", "dns_server", "IP address"),
    ("dhcp_domain = bad_domain", "dhcp_domain", "DNS domain"),
    ("state_path = relative/dir", "state_path", "absolute"),
    ("dhcpbridge = flatnet-dhcpbridge", "dhcpbridge", "absolute"),
    ("use_ipv6 = True", "use_ipv6", "IPv6"),
    ("iptables_backend = nft", "iptables_backend", ""),
    ("iptables_drop_action = DROP;x", "iptables_drop_action", ""),
    ("iptables_top_regex = (", "iptables_top_regex", "regular expression"),
    ("max_network_size = 16777216", "max_network_size", ""),
    ("dhcp_hostsdir_batch = 64\ndhcp_hostsdir_batch_max = 8",
     "dhcp_hostsdir_batch_max", "at least"),
    ("host = a\\x85b", "host", ""),
    ("multi_host = maybe", "multi_host", ""),
]  # fmt: skip


@pytest.mark.parametrize(("line", "option", "why"), BAD, ids=lambda v: v)
def test_a_bad_value_names_the_option_and_the_file(
    tmp_path, line, option, why
) -> None:
    path = _write(tmp_path, line.replace("\\x85", "\x85"))
    with pytest.raises(exception.ConfigError) as caught:
        settings.load([path])
    message = str(caught.value)
    assert path in message
    assert f"] {option}" in message
    assert why in message
    assert "\n" not in message


def test_a_bad_database_url_names_the_section(tmp_path) -> None:
    path = _write(tmp_path, "[database]\nconnection = nonsense\n")
    with pytest.raises(exception.ConfigError, match=r"\[database\] conn"):
        settings.load([path])


def test_every_registered_option_is_read_and_validated(tmp_path) -> None:
    source = config_files.find_config([_write(tmp_path, "")])
    options = reader.OptionReader(reader.parse(source), source)
    sections.build(options)
    assert options.read == reader.registered_names()


def test_tuning_knobs_reach_their_classes(tmp_path) -> None:
    s = _load(
        tmp_path,
        "dhcp_compact_files = 7\ndhcp_hostsdir_batch = 3\n"
        "dhcp_hostsdir_batch_max = 9\ndhcp_slow_batch = 0.5\n"
        "dhcp_served_timeout = 2\ndhcp_release_attempts = 4\n"
        "dhcp_release_interval = 0.1\nmax_backoff = 5\n"
        "lease_journal_rotate_bytes = 8192\nlease_journal_old_grace = 1\n"
        "lease_journal_max_bytes = 4096\nsync_interval = 0.5\n"
        "periodic_interval = 30\nfixed_ip_disassociate_timeout = 60\n",
    )
    t = s.dhcp_tuning
    assert (t.compact_files, t.hostsdir_batch, t.hostsdir_batch_max) == (
        7,
        3,
        9,
    )
    assert (t.slow_batch, t.served_timeout) == (0.5, 2.0)
    assert (t.release_attempts, t.release_interval) == (4, 0.1)
    assert s.daemon.max_backoff == 5.0
    assert s.daemon.sync_interval == 0.5
    assert s.daemon.periodic_interval == 30.0
    assert s.daemon.disassociate_timeout == 60.0
    assert s.lease_journal.rotate_bytes == 8192
    assert s.lease_journal.max_bytes == 4096


def test_settings_are_frozen(tmp_path) -> None:
    s = _load(tmp_path, "")
    with pytest.raises(AttributeError):
        s.host = "other"  # type: ignore[misc]


def test_hook_flag_files_default_to_the_files_read(tmp_path) -> None:
    path = _write(tmp_path, "")
    assert settings.load([path]).dhcp.dhcpbridge_flagfile == (path,)


def test_nova_hook_from_a_nova_conf_is_ignored_unless_asked() -> None:
    s = settings.load([NOVA_CONF])
    assert s.dhcp.dhcpbridge.endswith("/flatnet-dhcpbridge")
    assert s.dhcp.dhcpbridge_flagfile == (NOVA_CONF,)
    assert any("nova-dhcpbridge" in note for note in s.notes)


def test_nova_hook_kept_with_use_nova_dhcpbridge(tmp_path) -> None:
    extra = _write(tmp_path, "[DEFAULT]\nuse_nova_dhcpbridge = True\n")
    s = settings.load([NOVA_CONF, extra])
    assert s.dhcp.dhcpbridge == "/usr/bin/nova-dhcpbridge"
    assert s.dhcp.dhcpbridge_flagfile == ("/etc/nova/nova.conf",)
    assert s.notes == ()


def test_no_config_file_is_an_error_not_silent_defaults(tmp_path) -> None:
    missing = str(tmp_path / "none.conf")
    with pytest.raises(exception.ConfigError, match="--config-file"):
        settings.load([], defaults=[missing])


def test_default_search_finds_the_file_and_says_so(tmp_path) -> None:
    path = _write(tmp_path, "")
    s = settings.load([], defaults=[path])
    assert s.source.files == (path,)
    assert "default search" in s.source.describe()


def test_unreadable_or_broken_files_name_the_file(tmp_path) -> None:
    with pytest.raises(exception.ConfigError, match="does not exist"):
        settings.load([str(tmp_path / "x.conf")])
    broken = _write(tmp_path, "[DEFAULT]\nno equals sign\n")
    with pytest.raises(exception.ConfigError, match=broken):
        settings.load([broken])


def test_database_directory_private_unless_dnsmasq_traverses_it(
    tmp_path,
) -> None:
    s = _load(tmp_path, "")
    assert s.database.private_directory is False  # state_path holds both
    s = _load(
        tmp_path,
        f"[DEFAULT]\nstate_path = {tmp_path}/state\n[database]\n"
        f"connection = sqlite:///{tmp_path}/db/flatnet.sqlite\n",
    )
    assert s.database.private_directory is True


def test_database_display_hides_the_password() -> None:
    db = settings.DatabaseSettings(
        url="postgresql+psycopg://flat:secret@db1/flatnet", origin="x"
    )
    assert "secret" not in db.display()
    assert db.display() == "postgresql+psycopg://flat:***@db1/flatnet"


def test_origins_say_where_each_value_came_from(tmp_path) -> None:
    path = _write(tmp_path, "host = node9")
    s = settings.load([path], with_origins=True)
    found = {(o.group, o.name): o for o in s.options}
    assert found[("DEFAULT", "host")].origin == path
    assert found[("DEFAULT", "host")].value == "node9"
    assert found[("DEFAULT", "sync_interval")].origin == "default"
    assert found[("database", "connection")].value == "****"
