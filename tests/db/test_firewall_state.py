"""The "firewall" generation (bumped in the transaction of every change
that can alter a host's filters) and host_firewall, the compute
firewall's input for one host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import netaddr
import pytest
from sqlalchemy import select

from flatnet import exception
from flatnet.db import api, models, secgroups
from flatnet.plan import firewall
from tests.db.conftest import make_instance, make_network


def _snapshot(db: api.Database) -> dict[str, list[Any]]:
    """Every row of every table (the generations table excepted)."""
    with db.read() as conn:
        return {
            name: sorted(
                map(tuple, conn.execute(select(table)).all()), key=repr
            )
            for name, table in models.metadata.tables.items()
            if name != "generations"
        }


def _mac(n: int) -> netaddr.EUI:
    return netaddr.EUI(0xFA163E000000 + n)


def _create(db: api.Database, name: str, net_id: int, n: int) -> None:
    spec = api.InstanceSpec(
        hostname=name, display_name=name, host="h1", security_groups=("web",)
    )
    api.instance_create_allocated(db, spec, [api.VifRequest(net_id, _mac(n))])


def _setup(db: api.Database) -> int:
    net = make_network(db)
    api.secgroup_create(db, "web")
    api.secgroup_create(db, "app")
    api.secgroup_rule_add(db, "app", api.RuleSpec("udp", "53"))
    _create(db, "vm1", net.id, 1)
    make_instance(db, "vm2", net, 2, host="h1")
    api.instance_add_secgroup(db, "vm2", "app")
    return net.id


CHANGES: dict[str, Callable[[api.Database, int], object]] = {
    "rule add": lambda db, _: api.secgroup_rule_add(
        db, "web", api.RuleSpec("tcp", "80")
    ),
    "rule delete": lambda db, _: api.secgroup_rule_delete(
        db, "app", api.RuleSpec("udp", "53")
    ),
    "group delete": lambda db, _: api.secgroup_delete(db, "app"),
    "member add": lambda db, _: api.instance_add_secgroup(db, "vm1", "app"),
    "member remove": lambda db, _: api.instance_remove_secgroup(
        db, "vm1", "web"
    ),
    "instance create (allocated)": lambda db, net: _create(db, "vm3", net, 3),
    "instance create (bare)": lambda db, _: api.instance_create(
        db, hostname="vm3", display_name="vm3", host="h1"
    ),
    "instance delete": lambda db, _: api.deallocate_for_instance(
        db, api.instance_get(db, "vm1").uuid
    ),
    "instance host change": lambda db, _: api.instance_set_host(
        db, "vm1", "h2"
    ),
    "fixed IP allocation": lambda db, net: api.allocate_fixed_ip(
        db,
        instance_uuid=api.instance_get(db, "vm4").uuid,
        network_id=net,
        mac=_mac(4),
    ),
}
#: what a change needs first (not part of the transaction under test)
PREPARE: dict[str, Callable[[api.Database], object]] = {
    "group delete": lambda db: api.instance_remove_secgroup(db, "vm2", "app"),
    "fixed IP allocation": lambda db: api.instance_create(
        db, hostname="vm4", display_name="vm4", host="h1"
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_bumps_firewall_in_its_transaction(
    db, monkeypatch, change
) -> None:
    net_id = _setup(db)
    PREPARE.get(change, lambda db: None)(db)
    act = CHANGES[change]
    before, state = api.firewall_generation(db), _snapshot(db)
    real = secgroups.bump

    def failing(conn: Any, *stamps: Any, **named: Any) -> None:
        real(conn, *stamps, **named)
        raise RuntimeError("crash right after the bump")

    monkeypatch.setattr(secgroups, "bump", failing)
    with pytest.raises(RuntimeError):
        act(db, net_id)
    # the bump failed, so the change itself was rolled back with it
    assert _snapshot(db) == state
    assert api.firewall_generation(db) == before
    monkeypatch.setattr(secgroups, "bump", real)
    act(db, net_id)
    assert _snapshot(db) != state
    assert api.firewall_generation(db) > before


def test_refused_changes_and_new_groups_do_not_bump(db) -> None:
    _setup(db)
    before = api.firewall_generation(db)
    api.secgroup_create(db, "empty")  # no instance can use it yet
    for bad in (
        lambda: api.secgroup_rule_add(db, "app", api.RuleSpec("udp", "53")),
        lambda: api.secgroup_delete(db, "web"),
        lambda: api.instance_add_secgroup(db, "vm1", "web"),
        lambda: api.instance_remove_secgroup(db, "vm1", "app"),
    ):
        with pytest.raises(exception.FlatnetError):
            bad()
    api.instance_set_host(db, "vm1", "h1")  # no move
    assert api.firewall_generation(db) == before


def _by_uuid(state: Any) -> dict[str, Any]:
    return {i.uuid: i for i in state.instances}


def test_host_firewall_local_instances_and_members_on_every_host(db) -> None:
    net = make_network(db)
    api.secgroup_create(db, "web")
    api.secgroup_create(db, "app")
    api.secgroup_create(db, "dbs")
    api.secgroup_rule_add(db, "web", api.RuleSpec("tcp", "80"))
    api.secgroup_rule_add(db, "web", api.RuleSpec("tcp", "22", None, "app"))
    api.secgroup_rule_add(db, "app", api.RuleSpec("tcp", "5432", None, "dbs"))
    vm1 = make_instance(db, "vm1", net, 1, host="h1")
    vm2 = make_instance(db, "vm2", net, 2, host="h2")
    vm3 = make_instance(db, "vm3", net, 3, host="h1")
    vm4 = make_instance(db, "vm4", net, 4, host="h2")
    api.instance_add_secgroup(db, "vm1", "web")
    api.instance_add_secgroup(db, "vm2", "app")
    api.instance_add_secgroup(db, "vm4", "web")
    generation, state = api.host_firewall(db, "h1")
    assert generation == api.firewall_generation(db)
    local = _by_uuid(state)
    # only the instances placed on h1; vm3 is in no group
    assert set(local) == {vm1.instance.uuid, vm3.instance.uuid}
    groups = state.group_map()
    web = api.secgroup_get(db, "web")
    app = api.secgroup_get(db, "app")
    dbs = api.secgroup_get(db, "dbs")
    assert local[vm1.instance.uuid].security_groups == (web.id,)
    assert local[vm3.instance.uuid].security_groups == ()
    [nic] = local[vm1.instance.uuid].nics
    assert (nic.mac, nic.addresses) == (vm1.vif.address, (vm1.address,))
    assert nic.network_cidr == net.cidr
    assert nic.dhcp_server == (net.dhcp_server or net.gateway)
    assert local[vm1.instance.uuid].name == (f"instance-{vm1.instance.id:08x}")
    # the source group app (on h2 only) and, transitively, dbs
    assert set(groups) == {web.id, app.id, dbs.id}
    assert [r.id for r in groups[web.id].rules] == [r.id for r in web.rules]
    assert state.members_of(app.id) == {vm2.address}  # vm2 runs on h2
    assert state.members_of(web.id) == {vm1.address, vm4.address}
    # what the planner makes of it: a set of app's members on h1
    plan = firewall.firewall_plan(state, firewall.FirewallSettings())
    sets = {s.name: s.members for s in plan.ipsets}
    assert sets == {f"nova-compute-sg-{app.id}": frozenset({str(vm2.address)})}
    # h2 filters vm2 and vm4, and sees vm1 as a member of web
    _, other = api.host_firewall(db, "h2")
    assert set(_by_uuid(other)) == {vm2.instance.uuid, vm4.instance.uuid}
    assert other.members_of(web.id) == {vm1.address, vm4.address}


def test_host_firewall_follows_deletes_and_moves(db) -> None:
    net = make_network(db)
    api.secgroup_create(db, "app")
    api.secgroup_create(db, "web")
    api.secgroup_rule_add(db, "web", api.RuleSpec("tcp", "22", None, "app"))
    vm1 = make_instance(db, "vm1", net, 1, host="h1")
    vm2 = make_instance(db, "vm2", net, 2, host="h2")
    api.instance_add_secgroup(db, "vm1", "web")
    api.instance_add_secgroup(db, "vm2", "app")
    app_id = api.secgroup_get(db, "app").id
    first, state = api.host_firewall(db, "h1")
    assert state.members_of(app_id) == {vm2.address}
    api.instance_set_host(db, "vm2", "h1")
    second, state = api.host_firewall(db, "h1")
    assert second > first
    assert set(_by_uuid(state)) == {vm1.instance.uuid, vm2.instance.uuid}
    api.deallocate_for_instance(db, vm2.instance.uuid)
    third, state = api.host_firewall(db, "h1")
    assert third > second
    assert set(_by_uuid(state)) == {vm1.instance.uuid}
    assert state.members_of(app_id) == frozenset()
    assert api.host_firewall(db, "nosuch")[1].instances == ()
