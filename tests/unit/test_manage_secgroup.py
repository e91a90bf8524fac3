"""flatnet-manage secgroup ... and instance --secgroup / secgroup-add /
secgroup-remove (nova secgroup-* commands)."""

from __future__ import annotations

import pytest

from flatnet.db import api
from tests.unit.cli_harness import Cli


def _db(cli: Cli) -> api.Database:
    return api.Database(f"sqlite:///{cli.state}/flatnet.sqlite")


def test_the_issue_walkthrough(cli) -> None:
    assert "Created security group web" in cli.ok(
        "secgroup", "create", "web", "--description", "web servers"
    )
    cli.ok(
        "secgroup", "rule-add", "web", "--protocol", "tcp",
        "--port-range", "80:80", "--cidr", "0.0.0.0/0",
    )  # fmt: skip
    out = cli.ok(
        "secgroup", "rule-add", "web", "--protocol", "icmp",
        "--icmp-type", "-1", "--icmp-code", "-1", "--source-group", "web",
    )  # fmt: skip
    assert out.endswith("icmp -1:-1 from group web\n")
    cli.ok("instance", "create", "vm1", "--secgroup", "web")
    cli.ok("instance", "create", "vm2")  # 'default' when none is named
    shown = cli.json("secgroup", "show", "web")
    assert shown["instances"] == ["vm1"]
    assert [
        (r["protocol"], r["from_port"], r["to_port"], r["cidr"],
         r["source_group"])
        for r in shown["rules"]
    ] == [
        ("tcp", 80, 80, "0.0.0.0/0", None),
        ("icmp", -1, -1, None, "web"),
    ]  # fmt: skip
    listed = {g["name"]: g for g in cli.json("secgroup", "list")}
    assert set(listed) == {"default", "web"}
    assert listed["default"]["instances"] == ["vm2"]
    assert listed["default"]["rules"] == []
    text = cli.ok("secgroup", "show", "web")
    assert "instances: vm1\n" in text
    assert "group web" in text


def test_instance_create_defaults_to_this_host_and_is_filtered_there(
    cli,
) -> None:
    cli.ok("secgroup", "create", "web")
    cli.ok("secgroup", "create", "ops")
    made = cli.json(
        "instance", "create", "vm1", "--secgroup", "web", "--secgroup", "ops"
    )
    assert made["host"] == "node1"  # the host option of the config file
    assert made["security_groups"] == ["ops", "web"]
    db = _db(cli)
    try:
        _, state = api.host_firewall(db, "node1")
        [inst] = state.instances
        assert inst.uuid == made["uuid"]
        assert len(inst.security_groups) == 2
    finally:
        db.dispose()
    other = cli.json("instance", "create", "vm2", "--host", "node2")
    assert other["host"] == "node2"
    assert other["security_groups"] == ["default"]


def test_membership_commands(cli) -> None:
    cli.ok("secgroup", "create", "web")
    cli.ok("instance", "create", "vm1")
    assert "Added vm1 to security group web" in cli.ok(
        "instance", "secgroup-add", "vm1", "web"
    )
    cli.ok("instance", "secgroup-remove", "vm1", "default")
    assert cli.json("instance", "show", "vm1")["security_groups"] == ["web"]
    # in use: refused until the instance leaves or is deleted
    rc, _, err = cli("secgroup", "delete", "web")
    assert (rc, err.count("\n")) == (2, 1)
    assert "in use by instance(s) vm1" in err
    cli.ok("instance", "delete", "vm1")
    assert "Deleted security group web" in cli.ok("secgroup", "delete", "web")


def test_rule_delete_by_id_or_by_spec(cli) -> None:
    cli.ok("secgroup", "create", "web")
    cli.ok("secgroup", "rule-add", "web", "--protocol", "tcp",
           "--port-range", "22")  # fmt: skip
    cli.ok("secgroup", "rule-add", "web", "--protocol", "udp",
           "--port-range", "53:53", "--cidr", "10.0.0.0/8")  # fmt: skip
    [tcp, udp] = cli.json("secgroup", "show", "web")["rules"]
    assert f"Deleted rule {tcp['id']} of web" in cli.ok(
        "secgroup", "rule-delete", "web", str(tcp["id"])
    )
    cli.ok("secgroup", "rule-delete", "web", "--protocol", "udp",
           "--port-range", "53", "--cidr", "10.0.0.0/8")  # fmt: skip
    assert udp["id"] != tcp["id"]
    assert cli.json("secgroup", "show", "web")["rules"] == []


@pytest.fixture
def populated(cli) -> Cli:
    cli.ok("secgroup", "create", "web")
    cli.ok("secgroup", "create", "app")
    cli.ok("secgroup", "rule-add", "web", "--protocol", "tcp",
           "--port-range", "80", "--cidr", "0.0.0.0/0")  # fmt: skip
    cli.ok("secgroup", "rule-add", "app", "--protocol", "tcp",
           "--port-range", "22", "--source-group", "web")  # fmt: skip
    cli.ok("instance", "create", "vm1", "--secgroup", "app")
    return cli


RULE = ("secgroup", "rule-add", "web", "--protocol")
BAD: list[tuple[str, ...]] = [
    (*RULE, "gre", "--port-range", "80"),  # unknown protocol
    (*RULE, "tcp", "--port-range", "0:80"),  # port out of range
    (*RULE, "tcp", "--port-range", "80:65536"),
    (*RULE, "tcp", "--port-range", "99999999999999999999"),
    (*RULE, "udp", "--port-range", "90:80"),  # from > to
    (*RULE, "tcp", "--port-range", "80:x"),
    (*RULE, "tcp"),  # tcp needs ports
    (*RULE, "tcp", "--port-range", "80", "--cidr", "10.0.0.1/24"),  # bad CIDR
    (*RULE, "tcp", "--port-range", "80", "--cidr", "10.0.0.0/33"),
    (*RULE, "tcp", "--port-range", "80", "--cidr", "::/0"),
    (*RULE, "tcp", "--port-range", "80", "--cidr", "10.0.0.0"),
    (*RULE, "icmp", "--icmp-type", "256"),  # icmp type out of range
    (*RULE, "icmp", "--icmp-type", "-2"),
    (*RULE, "icmp", "--icmp-type", "8", "--icmp-code", "256"),
    (*RULE, "icmp", "--icmp-code", "0"),  # code without type
    (*RULE, "icmp", "--icmp-type", "x"),
    (*RULE, "tcp", "--icmp-type", "8"),
    (*RULE, "icmp", "--icmp-type", "8", "--port-range", "8:0"),
    (*RULE, "tcp", "--port-range", "80"),  # this rule already exists
    (*RULE, "tcp", "--port-range", "22", "--source-group", "nosuch"),
    (*RULE, "tcp", "--port-range", "22", "--cidr", "0.0.0.0/0",
     "--source-group", "app"),  # both sources (usage error)
    ("secgroup", "rule-add", "nosuch", "--protocol", "tcp", "--port-range",
     "22"),  # unknown group
    ("secgroup", "create", "web"),  # exists
    ("secgroup", "create", "default"),
    ("secgroup", "create", "a\nb"),
    ("secgroup", "create", " web"),
    ("secgroup", "create", "x" * 256),
    ("secgroup", "create", "w2", "--description", "a\x1bb"),
    ("secgroup", "create", "w2", "--project", "p\u2028"),
    ("secgroup", "delete", "app"),  # in use by vm1
    ("secgroup", "delete", "web"),  # the source of a rule of app
    ("secgroup", "delete", "default"),  # a system group
    ("secgroup", "delete", "nosuch"),
    ("secgroup", "show", "nosuch"),
    ("secgroup", "rule-delete", "web"),  # neither id nor spec
    ("secgroup", "rule-delete", "web", "1", "--protocol", "tcp"),  # both
    ("secgroup", "rule-delete", "web", "x"),
    ("secgroup", "rule-delete", "web", "999"),
    ("secgroup", "rule-delete", "web", "--protocol", "udp",
     "--port-range", "80"),  # no such rule
    ("instance", "create", "vm2", "--secgroup", "nosuch"),  # unknown group
    ("instance", "create", "vm2", "--secgroup", "web", "--secgroup", "x"),
    ("instance", "secgroup-add", "vm1", "app"),  # already a member
    ("instance", "secgroup-add", "vm1", "nosuch"),
    ("instance", "secgroup-add", "nosuch", "web"),
    ("instance", "secgroup-remove", "vm1", "web"),  # not a member
]  # fmt: skip


@pytest.mark.parametrize("argv", BAD, ids=lambda a: repr(a)[:70])
def test_bad_input_is_exit_2_one_line_and_the_file_unchanged(
    populated, argv
) -> None:
    cli = populated
    db = cli.state / "flatnet.sqlite"
    before = db.read_bytes()
    rc, out, err = cli(*argv)
    assert rc == 2, (argv, out, err)
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert "unexpected" not in err
    assert db.read_bytes() == before
    wal = cli.state / "flatnet.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0
