"""import nova: security groups, rules, memberships, and live instances
that share a host name (tests/nova_schema.py fixture)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, insert, text, update

from flatnet import exception
from flatnet.db import api, firewall_state
from flatnet.migrate import nova_import
from tests.db.test_nova_import import (
    _unchanged,
    by_id,
    dump,
    make_nova,
    nova_rows,
    nova_url,
)

__all__ = ["nova_url"]  # the fixture, imported for pytest


def test_groups_rules_and_members_are_kept(db, nova_url):
    make_nova(nova_url)
    before = api.generations(db).get("firewall", 0)
    nova_import.import_nova(db, nova_url)
    groups = by_id(db, "security_groups")
    live = [g for g in nova_rows(nova_url, "security_groups")
            if not g["deleted"]]  # fmt: skip
    assert sorted(groups) == sorted(g["id"] for g in live)
    for g in live:
        got = groups[g["id"]]
        assert (got["name"], got["project_id"], got["description"]) == (
            g["name"], g["project_id"], g["description"])  # fmt: skip
    rules = by_id(db, "security_group_rules")
    for r in nova_rows(nova_url, "security_group_rules"):
        if r["deleted"] or (r["cidr"] and ":" in str(r["cidr"])):
            assert r["id"] not in rules
            continue
        got = rules[r["id"]]
        assert got["protocol"] == ((r["protocol"] or "").lower() or None)
        assert (got["from_port"], got["to_port"], got["group_id"],
                got["parent_group_id"]) == (
            r["from_port"], r["to_port"], r["group_id"],
            r["parent_group_id"])  # fmt: skip
        assert got["cidr"] == (str(r["cidr"]) if r["cidr"] else None)
    members = {(m["security_group_id"], m["instance_uuid"])
               for m in by_id(db, "security_group_instance_association")
               .values()}  # fmt: skip
    table = "security_group_instance_association"
    nova_members = {(m["security_group_id"], m["instance_uuid"])
                    for m in nova_rows(nova_url, table)}  # fmt: skip
    assert members == nova_members
    assert api.generations(db)["firewall"] > before


def test_firewall_reads_the_imported_groups(db, nova_url):
    """The compute firewall of cirros' host sees its two groups with
    their rules: icmp echo (nova's -1 code = any) and the source-group
    rule naming project-1's default group."""
    make_nova(nova_url)
    nova_import.import_nova(db, nova_url)
    _, host = firewall_state.host_firewall(db, "compute-0")
    cirros = next(i for i in host.instances if i.id == 1)
    groups = {g.id: g for g in host.groups}
    names = sorted(groups[g].name for g in cirros.security_groups)
    assert names == ["default", "web"]
    web = next(g for g in host.groups if g.name == "web")
    protos = sorted((r.protocol or "", r.from_port) for r in web.rules)
    assert protos == [("icmp", 8), ("tcp", 80), ("udp", 53)]
    source = next(r for r in web.rules if r.protocol == "udp")
    assert groups[source.source_group].name == "default"


def test_group_name_taken_in_flatnet_is_a_conflict(db, nova_url):
    make_nova(nova_url)
    with db.write() as conn:
        conn.execute(text(
            "INSERT INTO security_groups (id, name, project_id, deleted)"
            " VALUES (77, 'web', 'project-1', 0)"))  # fmt: skip
    message = _unchanged(
        db, dump(db), lambda: nova_import.import_nova(db, nova_url)
    )
    assert "security_groups: project_id 'project-1' with name 'web'" in (
        message
    )


def test_bad_rule_in_nova_writes_nothing(db, tmp_path):
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    meta = make_nova(url)
    engine = create_engine(url)
    rules = meta.tables["security_group_rules"]
    with engine.begin() as conn:
        conn.execute(update(rules).where(rules.c.id == 1)
                     .values(to_port=70000))  # fmt: skip
    engine.dispose()
    message = _unchanged(
        db, dump(db), lambda: nova_import.import_nova(db, url)
    )
    assert (
        "input: nova security_group_rules id 1: security group rule: "
        in message
    )
    assert "70000" in message


def test_orphan_rule_and_member_are_skipped(db, tmp_path):
    """Rows whose group is gone (no foreign-key enforcement in nova's
    SQLite/MySQL) are counted, not imported."""
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    meta = make_nova(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(meta.tables["security_group_rules"]).values(
            id=900, parent_group_id=1, protocol="tcp", from_port=1,
            to_port=2, cidr=None, group_id=555, deleted=0))  # fmt: skip
    engine.dispose()
    summary = nova_import.import_nova(db, url)
    assert (
        summary.skipped["security_group_rules"][
            "its source group is deleted or missing in nova"
        ]
        == 1
    )
    assert 900 not in by_id(db, "security_group_rules")


# --- live instances sharing a host name -------------------------------------
def _share_name(url: str, meta, old: str, new: str) -> None:
    engine = create_engine(url)
    instances = meta.tables["instances"]
    with engine.begin() as conn:
        conn.execute(update(instances).where(instances.c.hostname == old)
                     .values(hostname=new))  # fmt: skip
    engine.dispose()


def test_duplicate_live_hostnames_are_renamed(db, nova_url):
    meta = make_nova(nova_url)
    _share_name(nova_url, meta, "vm-2", "vm-1")
    summary = nova_import.import_nova(db, nova_url)
    nova = {i["uuid"]: i for i in nova_rows(nova_url, "instances")}
    (rename,) = summary.renamed
    moved = nova[rename.instance_uuid]
    kept = nova[rename.kept_by]
    assert kept["id"] < moved["id"]
    assert rename.flatnet_hostname == f"vm-1-{moved['id']}"
    got = {i["uuid"]: i["hostname"] for i in by_id(db, "instances").values()}
    assert got[kept["uuid"]] == "vm-1"
    assert got[moved["uuid"]] == f"vm-1-{moved['id']}"
    # what the guest sees: flatnet's dnsmasq hosts line for its address
    (address,) = rename.addresses
    entries = {str(e.address): e.hostname for e in api.host_entries(db, 1)}
    assert entries[address] == f"vm-1-{moved['id']}"
    line = next(ln for ln in nova_import.summary_text(summary).splitlines()
                if rename.instance_uuid in ln)  # fmt: skip
    assert f"({address}): host name 'vm-1' -> 'vm-1-{moved['id']}'" in line
    assert nova_import.summary_dict(summary)["renamed"][0][
        "flatnet_hostname"] == rename.flatnet_hostname  # fmt: skip
    before = dump(db)
    again = nova_import.import_nova(db, nova_url)
    assert not again.changed
    assert dump(db) == before


def test_rename_skips_a_name_that_is_taken(db, tmp_path):
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    meta = make_nova(url)
    nova = {i["hostname"]: i for i in nova_rows(url, "instances")}
    taken = f"vm-1-{nova['vm-2']['id']}"
    _share_name(url, meta, "vm-3", taken)
    _share_name(url, meta, "vm-2", "vm-1")
    summary = nova_import.import_nova(db, url)
    assert [r.flatnet_hostname for r in summary.renamed] == [f"{taken}-2"]


@pytest.mark.parametrize("length", [63])
def test_renamed_label_stays_short(db, tmp_path, length):
    url = f"sqlite:///{tmp_path}/nova.sqlite"
    meta = make_nova(url)
    long_name = "a" * length
    _share_name(url, meta, "vm-1", long_name)
    _share_name(url, meta, "vm-2", long_name)
    summary = nova_import.import_nova(db, url)
    (rename,) = summary.renamed
    assert len(rename.flatnet_hostname) == 63
    assert rename.flatnet_hostname.endswith(f"-{rename.instance_id}")


def test_deleted_instance_may_share_a_name(db, nova_url):
    """Soft-deleted instances never count (nova's and flatnet's
    constraint include ``deleted``)."""
    meta = make_nova(nova_url)
    _share_name(nova_url, meta, "gone-0", "vm-1")
    summary = nova_import.import_nova(db, nova_url)
    assert summary.renamed == ()
    with pytest.raises(exception.NotFound):
        api.instance_get(db, "gone-0")
