"""db.api.instance_metadata: source address -> what the metadata
service tells that instance; metadata_generation moves with every
change that alters an answer (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import base64

import netaddr
from sqlalchemy import insert, update

from flatnet.db import api, models
from flatnet.plan.boot_data import BootData
from flatnet.plan.metadata import MetadataTree
from tests.db.conftest import make_network

NO_BOOT = BootData()
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGH1lPc2vl9t3BzIZm9YNEZ18iNe me@x"


def _boot(db, name, nets, mac, boot=NO_BOOT, address=None):
    spec = api.InstanceSpec(
        hostname=name, display_name=name.upper(), project_id="demo",
        boot=boot,
    )  # fmt: skip
    reqs = [
        api.VifRequest(
            network_id=n.id,
            mac=netaddr.EUI(0xFA163E000000 + mac + i),
            address=netaddr.IPAddress(address) if address and i == 0 else None,
        )
        for i, n in enumerate(nets)
    ]
    return api.instance_create_allocated(db, spec, reqs)


def test_two_instances_each_get_their_own(db) -> None:
    net = make_network(db)
    ud = base64.b64encode(b"#!/bin/sh\necho one\n").decode()
    one = _boot(db, "vm1", [net], 1, BootData(ud, "k1", KEY), "10.0.0.5")
    two = _boot(db, "vm2", [net], 16, address="10.0.0.6")
    md1 = api.instance_metadata(db, "10.0.0.5", domain="example.org")
    md2 = api.instance_metadata(db, "10.0.0.6", availability_zone="az9")
    assert md1 is not None
    assert md2 is not None
    inst = one[0].instance
    assert (md1.uuid, md1.hostname, md1.display_name) == (
        inst.uuid, "vm1", "VM1",
    )  # fmt: skip
    assert md1.ec2_id == f"i-{inst.id:08x}"
    assert md1.fqdn == "vm1.example.org"
    assert md1.user_data == b"#!/bin/sh\necho one\n"
    assert dict(md1.public_keys) == {"k1": KEY}
    assert md1.security_groups == ("default",)
    assert md1.availability_zone == "nova"
    assert md1.project_id == "demo"
    assert md1.reservation_id.startswith("r-")
    assert len(md1.reservation_id) == 10
    assert md1.floating_ip is None
    (vif,) = md1.vifs
    assert vif.vif_id == one[0].vif.uuid
    assert vif.mac == "fa:16:3e:00:00:01"
    assert (vif.address, vif.netmask, vif.gateway, vif.dns) == (
        "10.0.0.5", "255.255.255.0", "10.0.0.1", ("8.8.4.4",),
    )  # fmt: skip
    assert vif.network_id == net.uuid
    assert vif.dhcp is True
    assert md2.uuid == two[0].instance.uuid
    assert md2.user_data is None
    assert dict(md2.public_keys) == {}
    assert md2.availability_zone == "az9"
    assert md2.reservation_id != md1.reservation_id
    tree = MetadataTree(md2)
    answer = tree.get("/latest/meta-data/local-ipv4", b"")
    assert answer is not None
    assert answer.body == b"10.0.0.6"


def test_unknown_reserved_and_gone_addresses_are_nobody(db) -> None:
    net = make_network(db)
    info = _boot(db, "vm1", [net], 1, address="10.0.0.5")[0]
    assert api.instance_metadata(db, "10.0.0.7") is None  # free
    assert api.instance_metadata(db, "10.0.0.1") is None  # gateway
    assert api.instance_metadata(db, "192.0.2.1") is None
    assert api.instance_metadata(db, "not an address") is None
    api.deallocate_for_instance(db, info.instance.uuid)
    # still associated until DHCP releases it, but no longer allocated
    assert api.instance_metadata(db, "10.0.0.5") is None


def test_several_networks_in_network_info_order(db) -> None:
    a = make_network(db, "10.0.0.0/24", label="a", bridge="br100")
    b = make_network(db, "10.1.0.0/24", label="b", bridge="br101")
    infos = _boot(db, "vm1", [b, a], 1)
    md_by_second = api.instance_metadata(db, str(infos[1].address))
    assert md_by_second is not None
    vifs = md_by_second.vifs
    assert [v.vif_id for v in vifs] == [i.vif.uuid for i in infos]
    # local-ipv4 is the first fixed IP, whichever address asked
    assert md_by_second.fixed_ip == str(infos[0].address)


def test_floating_ip_and_security_groups(db) -> None:
    net = make_network(db)
    info = _boot(db, "vm1", [net], 1, address="10.0.0.5")[0]
    api.floating_create(
        db, [netaddr.IPAddress("192.0.2.10")], pool="nova", interface=None
    )
    api.floating_associate(
        db, netaddr.IPAddress("192.0.2.10"), info.instance.uuid, "node1"
    )
    with db.write() as conn:
        for gid, name in ((2, "web"), (1, "ssh"), (3, "gone")):
            conn.execute(
                insert(models.SECURITY_GROUPS).values(
                    id=gid, name=name, project_id="demo", deleted=0
                )
            )
            conn.execute(
                insert(models.SECURITY_GROUP_INSTANCES)
                .values(security_group_id=gid, deleted=0,
                        instance_uuid=info.instance.uuid)
            )  # fmt: skip
        conn.execute(
            update(models.SECURITY_GROUPS)
            .where(models.SECURITY_GROUPS.c.id == 3)
            .values(deleted=3)
        )
    md = api.instance_metadata(db, "10.0.0.5")
    assert md is not None
    assert md.floating_ip == "192.0.2.10"
    assert md.security_groups == ("ssh", "web")


def test_user_data_that_is_not_base64_is_not_served(db, caplog) -> None:
    net = make_network(db)
    _boot(db, "vm1", [net], 1, BootData(user_data="%%%"), "10.0.0.5")
    md = api.instance_metadata(db, "10.0.0.5")
    assert md is not None
    assert md.user_data is None
    assert "not base64" in caplog.text


def test_generation_moves_with_every_change_of_an_answer(db) -> None:
    net = make_network(db)
    seen = [api.metadata_generation(db)]

    def moved() -> bool:
        seen.append(api.metadata_generation(db))
        return seen[-1] != seen[-2]

    info = _boot(db, "vm1", [net], 1, address="10.0.0.5")[0]
    assert moved()  # allocation
    api.floating_create(
        db, [netaddr.IPAddress("192.0.2.10")], pool="nova", interface=None
    )
    moved()
    api.floating_associate(
        db, netaddr.IPAddress("192.0.2.10"), info.instance.uuid, "node1"
    )
    assert moved()  # floating association
    api.floating_disassociate(db, netaddr.IPAddress("192.0.2.10"))
    assert moved()
    assert not moved()  # nothing changed: same value
    api.deallocate_for_instance(db, info.instance.uuid)
    assert moved()  # deallocation
