"""Security groups in the database: groups, rules, membership, and the
"firewall" generation that announces each change to the hosts."""

from __future__ import annotations

import threading

import netaddr
import pytest

from flatnet import exception
from flatnet.db import api
from tests.db.conftest import make_instance, make_network

TCP80 = api.RuleSpec("tcp", "80:80", "0.0.0.0/0")


def test_create_list_show_delete_and_the_default_group(db) -> None:
    web = api.secgroup_create(db, "web", description="web servers")
    assert (web.name, web.description, web.project_id) == (
        "web",
        "web servers",
        None,
    )
    # nova _security_group_ensure_default: 'default' appears on first
    # use, described "default", with no rules (security_group_default_rules
    # is empty by default)
    groups = {g.name: g for g in api.secgroup_list(db)}
    assert set(groups) == {"default", "web"}
    assert groups["default"].description == "default"
    assert groups["default"].rules == ()
    assert api.secgroup_get(db, "web").id == web.id
    api.secgroup_delete(db, "web")
    with pytest.raises(exception.NotFound, match="'web'"):
        api.secgroup_get(db, "web")
    assert api.secgroup_create(db, "web").id != web.id  # name free again


def test_names_are_unique_per_project(db) -> None:
    api.secgroup_create(db, "web")
    with pytest.raises(exception.Conflict, match="already exists"):
        api.secgroup_create(db, "web")
    other = api.secgroup_create(db, "web", project_id="p2")
    assert other.project_id == "p2"
    assert [g.name for g in api.secgroup_list(db, project_id="p2")] == [
        "default",
        "web",
    ]
    with pytest.raises(exception.Conflict):
        api.secgroup_create(db, "default", project_id="p2")


def test_rules_are_validated_defaulted_and_unique(db) -> None:
    api.secgroup_create(db, "web")
    rule = api.secgroup_rule_add(db, "web", TCP80)
    assert (rule.protocol, rule.from_port, rule.to_port, str(rule.cidr)) == (
        "tcp",
        80,
        80,
        "0.0.0.0/0",
    )
    assert rule.id > 0
    # nova's defaults: no cidr is 0.0.0.0/0; a group rule without ports
    # opens tcp 1:65535
    open_icmp = api.secgroup_rule_add(db, "web", api.RuleSpec("icmp"))
    assert str(open_icmp.cidr) == "0.0.0.0/0"
    grp = api.secgroup_rule_add(
        db, "web", api.RuleSpec("tcp", source_group="web")
    )
    web = api.secgroup_get(db, "web")
    assert (grp.from_port, grp.to_port, grp.source_group) == (1, 65535, web.id)
    assert [r.id for r in web.rules] == [rule.id, open_icmp.id, grp.id]
    with pytest.raises(exception.Conflict, match="already exists"):
        api.secgroup_rule_add(db, "web", api.RuleSpec("TCP", "80", None))


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (api.RuleSpec("gre", None, "0.0.0.0/0"), "protocol"),
        (api.RuleSpec("tcp", "0:80", "0.0.0.0/0"), "1-65535"),
        (api.RuleSpec("tcp", "80:65536", "0.0.0.0/0"), "1-65535"),
        (api.RuleSpec("udp", "90:80", "0.0.0.0/0"), "reversed"),
        (api.RuleSpec("tcp", "80", "10.0.0.1/24"), "host bits"),
        (api.RuleSpec("tcp", "80", "10.0.0.0/33"), "CIDR"),
        (api.RuleSpec("icmp", "256:-1", "0.0.0.0/0"), "icmp type"),
        (api.RuleSpec("icmp", "8:256", "0.0.0.0/0"), "icmp code"),
        (api.RuleSpec("tcp", "80", "0.0.0.0/0", "web"), "one of them"),
        (api.RuleSpec("tcp", "80", None, "nosuch"), "'nosuch'"),
    ],
)
def test_bad_rules_change_nothing(db, spec, error) -> None:
    api.secgroup_create(db, "web")
    before = api.firewall_generation(db)
    with pytest.raises((exception.InvalidInput, exception.NotFound)) as exc:
        api.secgroup_rule_add(db, "web", spec)
    assert error in str(exc.value)
    assert "\n" not in str(exc.value)
    assert api.secgroup_get(db, "web").rules == ()
    assert api.firewall_generation(db) == before


def test_rule_delete_by_id_or_by_spec(db) -> None:
    api.secgroup_create(db, "web")
    one = api.secgroup_rule_add(db, "web", TCP80)
    two = api.secgroup_rule_add(db, "web", api.RuleSpec("udp", "53"))
    assert api.secgroup_rule_delete(db, "web", one.id).id == one.id
    with pytest.raises(exception.NotFound, match=f"rule {one.id}"):
        api.secgroup_rule_delete(db, "web", one.id)
    assert api.secgroup_rule_delete(db, "web", api.RuleSpec("udp", "53:53"))
    assert api.secgroup_get(db, "web").rules == ()
    with pytest.raises(exception.NotFound):
        api.secgroup_rule_delete(db, "web", two.id)


def test_delete_refuses_default_groups_in_use_and_sources(db) -> None:
    net = make_network(db)
    api.secgroup_create(db, "web")
    api.secgroup_create(db, "app")
    api.secgroup_rule_add(db, "app", api.RuleSpec("tcp", "22", None, "web"))
    info = make_instance(db, "vm1", net, 1)
    api.instance_add_secgroup(db, "vm1", "web")
    with pytest.raises(exception.Conflict, match="system group"):
        api.secgroup_delete(db, "default")
    with pytest.raises(exception.Conflict, match="in use by instance.*vm1"):
        api.secgroup_delete(db, "web")
    api.instance_remove_secgroup(db, info.instance.uuid, "web")
    with pytest.raises(
        exception.Conflict, match="source group of rules of app"
    ):
        api.secgroup_delete(db, "web")
    api.secgroup_delete(db, "app")  # takes its rules with it
    assert api.secgroup_delete(db, "web").name == "web"
    assert [g.name for g in api.secgroup_list(db)] == ["default"]


def test_membership(db) -> None:
    net = make_network(db)
    spec = api.InstanceSpec(
        hostname="vm1", display_name="vm1", security_groups=("default",)
    )
    api.secgroup_create(db, "web")
    api.instance_create_allocated(
        db, spec, [api.VifRequest(net.id, mac=netaddr.EUI(0xFA163E000001))]
    )
    assert api.instance_secgroups(db, "vm1") == ["default"]
    api.instance_add_secgroup(db, "vm1", "web")
    with pytest.raises(exception.Conflict, match="already in"):
        api.instance_add_secgroup(db, "vm1", "web")
    assert api.instance_secgroups(db, "vm1") == ["default", "web"]
    assert api.secgroup_get(db, "web").instances == ("vm1",)
    api.instance_remove_secgroup(db, "vm1", "default")
    with pytest.raises(exception.NotFound):
        api.instance_remove_secgroup(db, "vm1", "default")
    with pytest.raises(exception.NotFound):
        api.instance_add_secgroup(db, "vm1", "nosuch")
    with pytest.raises(exception.InstanceNotFound):
        api.instance_add_secgroup(db, "nosuch", "web")
    bad = api.InstanceSpec(
        hostname="vm2", display_name="vm2", security_groups=("nosuch",)
    )
    with pytest.raises(exception.NotFound):
        api.instance_create_allocated(
            db, bad, [api.VifRequest(net.id, mac=netaddr.EUI(0xFA163E000002))]
        )
    assert [i.hostname for i in api.instance_list(db)] == ["vm1"]
    api.deallocate_for_instance(db, api.instance_get(db, "vm1").uuid)
    assert api.secgroup_get(db, "web").instances == ()


def test_concurrent_first_users_share_one_default_group(db) -> None:
    """Eight instances of a new project created at once: one 'default'
    group (the losers of the insert race find the winner's row)."""
    net = make_network(db)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def boot(n: int) -> None:
        spec = api.InstanceSpec(
            hostname=f"vm{n}",
            display_name=f"vm{n}",
            project_id="p1",
            security_groups=("default",),
        )
        req = api.VifRequest(net.id, mac=netaddr.EUI(0xFA163E000100 + n))
        start.wait()
        try:
            api.instance_create_allocated(db, spec, [req])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    [group] = api.secgroup_list(db, project_id="p1")
    assert group.name == "default"
    assert len(group.instances) == 8
