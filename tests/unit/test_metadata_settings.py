"""flatnet-metadata's settings and wiring: nova's option names (and
their nova 16 [DEFAULT] locations) reach MetadataSettings, bad values
are one ConfigError naming the option, the vendor data file is read
once at start-up, and the lookup/generation use the database."""

from __future__ import annotations

import json

import pytest

from flatnet import exception, settings, wiring


def _load(tmp_path, text: str) -> settings.Settings:
    path = tmp_path / "flatnet.conf"
    path.write_text(f"[DEFAULT]\nstate_path = {tmp_path}/state\n{text}\n")
    return settings.load([str(path)])


def test_defaults_are_novas(tmp_path) -> None:
    md = _load(tmp_path, "").metadata
    assert (md.server.listen_host, md.server.listen_port) == ("0.0.0.0", 8775)
    assert md.server.cache.ttl == 15.0
    assert md.server.tokens == "optional"
    assert md.vendordata_path is None
    assert md.availability_zone == "nova"


def test_options_reach_the_server_settings(tmp_path) -> None:
    md = _load(
        tmp_path,
        "metadata_listen = 127.0.0.1\nmetadata_listen_port = 8080\n"
        "default_availability_zone = az1\n"
        "[api]\nmetadata_cache_expiration = 0\n"
        f"vendordata_jsonfile_path = {tmp_path}/v.json\n"
        "[metadata]\ntokens = required\nmax_connections = 10\n"
        "max_connections_per_ip = 2\nlookup_workers = 3\n"
        "generation_interval = 0.5\nshutdown_grace = 1\naccess_log = true\n",
    ).metadata
    s = md.server
    assert (s.listen_host, s.listen_port, s.tokens) == (
        "127.0.0.1", 8080, "required",
    )  # fmt: skip
    assert (s.max_connections, s.max_connections_per_ip) == (10, 2)
    assert (s.lookup_workers, s.generation_interval) == (3, 0.5)
    assert (s.shutdown_grace, s.access_log) == (1.0, True)
    assert (s.cache.ttl, s.cache.negative_ttl) == (0.0, 0.0)
    assert md.vendordata_path == f"{tmp_path}/v.json"
    assert md.availability_zone == "az1"


def test_nova_16_default_section_is_accepted(tmp_path) -> None:
    md = _load(tmp_path, "metadata_cache_expiration = 30\n").metadata
    assert md.server.cache.ttl == 30.0


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("metadata_listen = somewhere", "metadata_listen"),
        ("metadata_listen_port = 70000", "metadata_listen_port"),
        ("[metadata]\ntokens = maybe", "tokens"),
        ("[metadata]\nlookup_workers = 0", "lookup_workers"),
        ("[metadata]\ngeneration_interval = nan", "generation_interval"),
        ("[api]\nvendordata_jsonfile_path = v.json", "vendordata_json"),
        ("[api]\nmetadata_cache_expiration = -1", "metadata_cache_exp"),
    ],
)
def test_bad_values_name_the_option(tmp_path, text: str, option: str):
    with pytest.raises(exception.ConfigError) as caught:
        _load(tmp_path, text)
    assert option in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "No such file"), ("{", "not JSON"), ("[1]", "not a JSON object")],
)
def test_a_bad_vendor_data_file_is_a_config_error(
    tmp_path, content: str | None, why: str
) -> None:
    vendor = tmp_path / "v.json"
    if content is not None:
        vendor.write_text(content)
    loaded = _load(tmp_path, f"[api]\nvendordata_jsonfile_path = {vendor}")
    with pytest.raises(exception.ConfigError, match=why):
        wiring.metadata_service(loaded)


def test_wiring_serves_from_the_database(cli, tmp_path) -> None:
    vendor = tmp_path / "v.json"
    vendor.write_text(json.dumps({"a": 1}))
    text = cli.conf.read_text()
    cli.conf.write_text(
        text + "dhcp_domain = example.org\n"
        f"[api]\nvendordata_jsonfile_path = {vendor}\n"
    )
    cli.ok("instance", "create", "vm1")
    service = wiring.metadata_service(settings.load([str(cli.conf)]))
    try:
        assert service.settings.vendor_data == {"a": 1}
        before = service.generation()
        md = service.lookup("10.0.0.2")
        assert md is not None
        assert md.fqdn == "vm1.example.org"
        assert service.lookup("10.0.0.3") is None
        cli.ok("instance", "delete", "vm1")
        assert service.generation() != before
        assert service.lookup("10.0.0.2") is None
    finally:
        service.db.dispose()
