"""import nova: a nova 16.0.0 database (tests/nova_schema.py) imported
into flatnet's, on SQLite and (FLATNET_TEST_PG_URL) PostgreSQL for both
sides."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import netaddr
import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from flatnet import exception
from flatnet.db import api, nova_source
from flatnet.migrate import nova_import
from tests import nova_schema
from tests.db.conftest import PG_URL, make_instance, make_network

TABLES = (
    "networks",
    "instances",
    "virtual_interfaces",
    "fixed_ips",
    "floating_ips",
    "security_groups",
    "security_group_rules",
    "security_group_instance_association",
)
#: rows an import of the default fixture writes
ROWS = 1 + 11 + 11 + 256 + 13 + 4 + 9 + 11


@pytest.fixture(
    params=["sqlite", pytest.param("pg", marks=pytest.mark.postgres)]
)
def nova_url(request, tmp_path) -> Iterator[str]:
    """An empty database URL for a nova fixture."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nova.sqlite"
        return
    if not PG_URL:
        pytest.skip("FLATNET_TEST_PG_URL is not set")
    name = f"nova_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_nova(url: str, **data: Any) -> Any:
    engine = create_engine(url)
    meta = nova_schema.populate(engine, nova_schema.NovaData(**data))
    engine.dispose()
    return meta


def nova_rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    meta = nova_schema.nova_metadata()
    with engine.connect() as conn:
        found = [
            dict(r._mapping) for r in conn.execute(select(meta.tables[table]))
        ]
    engine.dispose()
    return found


def dump(db: api.Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.read() as conn:
        return {
            t: [
                tuple(r)
                for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))  # noqa: S608
            ]
            for t in (*TABLES, "generations")
        }


def by_id(db: api.Database, table: str) -> dict[int, dict[str, Any]]:
    with db.read() as conn:
        found = conn.execute(text(f"SELECT * FROM {table}")).mappings()  # noqa: S608
        return {r["id"]: dict(r) for r in found}


def _ip(value: Any) -> str | None:
    return None if value is None else str(value).split("/")[0]


def test_nothing_lost(db, nova_url):
    make_nova(nova_url)
    summary = nova_import.import_nova(db, nova_url)
    assert summary.changed
    flat_nets = {n["id"]: n for n in nova_rows(nova_url, "networks")
                 if n["vlan"] is None and not n["deleted"]}  # fmt: skip
    fixed = by_id(db, "fixed_ips")
    nova_fixed = [
        f for f in nova_rows(nova_url, "fixed_ips")
        if f["network_id"] in flat_nets and not f["deleted"]
    ]  # fmt: skip
    assert len(fixed) == len(nova_fixed) == 256
    for row in nova_fixed:
        got = fixed[row["id"]]
        assert got["address"] == _ip(row["address"])
        for flag in ("allocated", "leased", "reserved"):
            assert bool(got[flag]) == bool(row[flag]), (row, flag)
        assert got["instance_uuid"] == row["instance_uuid"]
        assert str(got["updated_at"]) == str(row["updated_at"])
        if row["instance_uuid"] is not None:
            assert got["virtual_interface_id"] == row["virtual_interface_id"]
    vifs = by_id(db, "virtual_interfaces")
    for row in nova_rows(nova_url, "virtual_interfaces"):
        if row["id"] in vifs:
            assert vifs[row["id"]]["address"] == row["address"]
            assert vifs[row["id"]]["uuid"] == row["uuid"]
    live = {
        r["uuid"]: r
        for r in nova_rows(nova_url, "instances")
        if not r["deleted"]
    }
    instances = {r["uuid"]: r for r in by_id(db, "instances").values()}
    for uuid_, row in live.items():
        got = instances[uuid_]
        assert (got["id"], got["hostname"], got["host"]) == (
            row["id"], row["hostname"], row["host"])  # fmt: skip
    floating = by_id(db, "floating_ips")
    for row in nova_rows(nova_url, "floating_ips"):
        if not row["deleted"]:
            got = floating[row["id"]]
            assert got["fixed_ip_id"] == row["fixed_ip_id"]
            assert got["address"] == _ip(row["address"])
            assert bool(got["auto_assigned"]) == bool(row["auto_assigned"])


def test_flatnet_serves_what_nova_served(db, nova_url):
    make_nova(nova_url)
    nova_import.import_nova(db, nova_url)
    network = api.network_get(db, "private")
    assert (network.id, network.bridge, network.generation) == (1, "br100", 1)
    entries = api.host_entries(db, network.id)
    assert [e.hostname for e in entries][:2] == ["cirros", "vm-1"]
    assert len(entries) == 10  # live allocated addresses only
    leased = {str(x.address) for x in api.leases(db, network.id)}
    # every 7th instance never leased; gone-0 still leased (deallocated)
    assert "10.0.0.9" not in leased
    assert "10.0.0.12" in leased
    floating = {str(f.address): f for f in api.floating_list(db)}
    assert str(floating["172.24.4.1"].fixed_address) == "10.0.0.2"
    # the next allocation takes a never-used address, as nova would
    info = make_instance(db, "new", network, mac=0x99)
    assert str(info.address) == "10.0.0.14"


def test_counts_what_is_skipped_and_why(db, nova_url):
    make_nova(nova_url)
    summary = nova_import.import_nova(db, nova_url)
    assert summary.imported == {
        "networks": 1, "instances": 11, "virtual_interfaces": 11,
        "fixed_ips": 256, "floating_ips": 13, "security_groups": 4,
        "security_group_rules": 9,
        "security_group_instance_association": 11,
    }  # fmt: skip
    skipped = summary.skipped
    assert skipped["networks"] == {
        "VLAN network (VlanManager; flatnet serves flat networks)": 1,
        "deleted in nova (soft-deleted row)": 1,
    }
    assert skipped["security_groups"] == {
        "deleted in nova (soft-deleted row)": 1
    }
    assert skipped["security_group_rules"] == {
        "deleted in nova (soft-deleted row)": 1,
        "IPv6 rule (flatnet's firewall and nova FlatDHCP are IPv4)": 1,
    }
    assert list(skipped["security_group_default_rules"].values()) == [1]
    assert sum(skipped["fixed_ips"].values()) == 32
    assert summary.adjusted["fixed_ips"] == {
        "virtual_interface_id cleared on a disassociated address (nova's "
        "stale-timeout residue)": 1
    }
    text_out = nova_import.summary_text(summary)
    assert "VLAN network" in text_out
    assert "fixed_ips" in text_out


def test_second_run_changes_nothing_and_says_so(db, nova_url):
    make_nova(nova_url)
    nova_import.import_nova(db, nova_url)
    before = dump(db)
    again = nova_import.import_nova(db, nova_url)
    assert not again.changed
    assert sum(again.unchanged.values()) == ROWS
    assert dump(db) == before
    assert nova_import.summary_text(again).startswith("nothing to import")


def test_progress_reports_every_row(db, nova_url):
    make_nova(nova_url)
    seen: list[int] = []
    totals: list[int] = []

    def factory(total: int):
        totals.append(total)
        return seen.append

    nova_import.import_nova(db, nova_url, progress=factory)
    assert totals == [ROWS]
    assert sum(seen) == ROWS


# --- bad input: one clear error, nothing written -------------------------
def _unchanged(db, before, call) -> str:
    with pytest.raises(exception.FlatnetError) as err:
        call()
    assert dump(db) == before
    message = str(err.value)
    assert "\n" not in message
    return message


def test_unreachable_database(db, tmp_path):
    before = dump(db)
    missing = f"sqlite:///{tmp_path}/missing.sqlite"
    assert "no such SQLite file" in _unchanged(
        db, before, lambda: nova_import.import_nova(db, missing)
    )
    assert not (tmp_path / "missing.sqlite").exists()
    url = "postgresql+psycopg://nova:s3cret@127.0.0.1:9/nova"
    message = _unchanged(db, before, lambda: nova_import.import_nova(db, url))
    assert "cannot read it" in message
    assert "s3cret" not in message


def test_not_a_nova_database(db, db_url):
    before = dump(db)
    message = _unchanged(
        db, before, lambda: nova_import.import_nova(db, db_url)
    )
    assert "not a nova database (no migrate_version table)" in message


def test_nova_api_database_is_refused(db, nova_url):
    meta = make_nova(nova_url)
    engine = create_engine(nova_url)
    with engine.begin() as conn:
        conn.execute(update(meta.tables["migrate_version"]).values(
            repository_id="nova_api"))  # fmt: skip
    engine.dispose()
    message = _unchanged(
        db, dump(db), lambda: nova_import.import_nova(db, nova_url)
    )
    assert "not nova's main database (migrate_version has nova_api)" in message


@pytest.mark.parametrize("version", [216, 333, 403, 500])
def test_unknown_schema_version(db, tmp_path, version):
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    meta = make_nova(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(meta.tables["migrate_version"]).values(version=version)
        )
    engine.dispose()
    message = _unchanged(
        db, dump(db), lambda: nova_import.import_nova(db, url)
    )
    assert f"nova schema version {version} is not one flatnet knows" in message


def test_missing_column_is_refused(db, tmp_path):
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    make_nova(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE fixed_ips DROP COLUMN leased"))
    engine.dispose()
    message = _unchanged(
        db, dump(db), lambda: nova_import.import_nova(db, url)
    )
    assert "table fixed_ips lacks column(s) leased" in message


def test_conflicting_network_in_flatnet(db, nova_url):
    make_nova(nova_url)
    make_network(db, "10.9.0.0/24", label="mine", bridge="br9")
    before = dump(db)
    message = _unchanged(
        db, before, lambda: nova_import.import_nova(db, nova_url)
    )
    assert message.startswith(
        "Conflict: networks id 1 is already in flatnet's"
    )


def test_conflict_late_in_the_import_writes_nothing(db, nova_url):
    """The floating IPs are written last: a clash there must roll back
    the networks, instances and fixed IPs written before it."""
    make_nova(nova_url)
    with db.write() as conn:
        conn.execute(text(
            "INSERT INTO floating_ips"
            " (id, address, pool, auto_assigned, deleted)"
            " VALUES (500, '172.24.4.9', 'mine', false, 0)"))  # fmt: skip
    before = dump(db)
    message = _unchanged(
        db, before, lambda: nova_import.import_nova(db, nova_url)
    )
    assert "floating_ips: address '172.24.4.9'" in message
    assert before["networks"] == []


def test_bad_mac_in_nova(db, tmp_path):
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    meta = make_nova(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        vifs = meta.tables["virtual_interfaces"]
        conn.execute(
            update(vifs).where(vifs.c.id == 3).values(address="fa:16:3e:zz")
        )
    engine.dispose()
    message = _unchanged(
        db, dump(db), lambda: nova_import.import_nova(db, url)
    )
    assert (
        "nova virtual_interfaces id 3: 'fa:16:3e:zz' is not a MAC" in message
    )


def test_flatnet_schema_missing(tmp_path, nova_url):
    make_nova(nova_url)
    empty = api.Database(f"sqlite:///{tmp_path}/empty.sqlite")
    with pytest.raises(exception.ConfigError, match="db sync"):
        nova_import.import_nova(empty, nova_url)
    empty.dispose()


def test_soft_deleted_rows_keep_their_deleted_marker(db, nova_url):
    make_nova(nova_url)
    nova_import.import_nova(db, nova_url)
    gone = [
        i for i in by_id(db, "instances").values() if i["hostname"] == "gone-0"
    ]
    assert gone
    assert gone[0]["deleted"] == gone[0]["id"]
    row = next(f for f in by_id(db, "fixed_ips").values()
               if f["instance_uuid"] == gone[0]["uuid"])  # fmt: skip
    assert (bool(row["allocated"]), bool(row["leased"])) == (False, True)
    assert api.instance_list(db)[-1].hostname == "vm-9"  # deleted not listed


def test_read_is_read_only(nova_url):
    make_nova(nova_url)
    before = nova_rows(nova_url, "fixed_ips")
    rows = nova_source.read_nova(nova_url)
    assert rows.version == nova_schema.PIKE_VERSION
    assert nova_rows(nova_url, "fixed_ips") == before
    assert netaddr.IPNetwork(str(rows.rows["networks"][0]["cidr"])).size == 256


@pytest.mark.slow
def test_ten_thousand_instances(tmp_path):
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    make_nova(url, instances=10_000, cidr="10.0.0.0/18")
    db = api.Database(f"sqlite:///{tmp_path}/flatnet.sqlite")
    api.sync(db)
    summary = nova_import.import_nova(db, url)
    assert summary.imported["instances"] == 10_001
    assert summary.imported["fixed_ips"] == 16_384
    assert len(api.host_entries(db, 1)) == 10_000
    db.dispose()
