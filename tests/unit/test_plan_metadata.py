"""Literal answers of the metadata tree (nova 16.0.0
nova/api/metadata/base.py and nova/virt/netutils.py, see doc/metadata.md)."""

from __future__ import annotations

import json

import pytest

from flatnet.plan import metadata as plan
from flatnet.plan import metadata_json

KEY = "ssh-rsa AAAAB3Nza alice@example"
VIF = plan.MetadataVif(
    vif_id="9c3e6b4e-2f0d-4b5e-9d2a-3b0f6a1e7c11",
    mac="fa:16:3e:12:34:56",
    network_id="5f1c7a2e-8b3d-4c6e-a1f0-2d9e8c7b6a55",
    address="10.0.0.3",
    netmask="255.255.255.0",
    gateway="10.0.0.1",
    dns=("8.8.4.4", "8.8.8.8"),
)
MD = plan.InstanceMetadata(
    uuid="b65cee2f-8c69-4aeb-be2f-f79742548fc2",
    ec2_id=plan.ec2_instance_id(42),
    hostname="vm1",
    fixed_ip="10.0.0.3",
    reservation_id="r-3t8muvr0",
    display_name="web server",
    floating_ip="172.24.4.3",
    security_groups=("default", "web"),
    public_keys={"mykey": KEY},
    user_data=b"#cloud-config\n",
    project_id="demo",
    ami_id="ami-00000001",
    instance_type="m1.tiny",
    vifs=(VIF,),
)
SEED = bytes(range(8))


def get(path: str, md: plan.InstanceMetadata = MD) -> bytes | None:
    answer = plan.MetadataTree(md).get(path, SEED)
    return None if answer is None else answer.body


def test_root_lists_ec2_versions_and_latest():
    expected = (
        b"1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n"
        b"2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest"
    )
    assert get("/") == expected
    assert get("") == expected
    assert get("/foo/../") == expected  # nova test_root
    assert get("/ec2") == expected


@pytest.mark.parametrize("path", ["/2009-04-04", "/latest/", "/ec2/latest"])
def test_version_root(path):
    assert get(path) == b"meta-data/\nuser-data"  # nova test_version_root


def test_version_root_without_user_data():
    md = plan.InstanceMetadata(
        uuid="u", ec2_id="i-00000001", hostname="h", fixed_ip="10.0.0.2",
        reservation_id="r-1",
    )  # fmt: skip
    assert get("/latest", md) == b"meta-data/"
    assert get("/latest/user-data", md) is None
    assert get("/latest/meta-data/public-keys/", md) is None
    assert b"public-keys/" not in get("/latest/meta-data/", md)


@pytest.mark.parametrize("path", ["/latest/meta-data", "/latest/meta-data/"])
def test_meta_data_listing_2009_04_04(path):
    assert get(path) == (
        b"ami-id\nami-launch-index\nami-manifest-path\n"
        b"block-device-mapping/\nhostname\ninstance-action\ninstance-id\n"
        b"instance-type\nlocal-hostname\nlocal-ipv4\nplacement/\n"
        b"public-hostname\npublic-ipv4\npublic-keys/\nreservation-id\n"
        b"security-groups"
    )


def test_meta_data_listing_1_0_has_no_later_keys():
    assert get("/1.0/meta-data/") == (
        b"ami-id\nami-launch-index\nami-manifest-path\nhostname\n"
        b"instance-id\nlocal-ipv4\npublic-keys/\nreservation-id\n"
        b"security-groups"
    )
    assert get("/1.0/meta-data/local-hostname") is None
    assert get("/2007-01-19/meta-data/local-hostname") == b"vm1.novalocal"
    assert get("/2007-08-29/meta-data/instance-type") == b"m1.tiny"
    assert get("/2007-10-10/meta-data/block-device-mapping/") is None
    assert get("/2008-02-01/meta-data/instance-action") is None


@pytest.mark.parametrize(
    ("leaf", "body"),
    [
        ("ami-id", b"ami-00000001"),
        ("ami-launch-index", b"0"),
        ("ami-manifest-path", b"FIXME"),
        ("instance-id", b"i-0000002a"),
        ("hostname", b"vm1.novalocal"),
        ("local-hostname", b"vm1.novalocal"),
        ("public-hostname", b"vm1.novalocal"),
        ("local-ipv4", b"10.0.0.3"),
        ("public-ipv4", b"172.24.4.3"),
        ("reservation-id", b"r-3t8muvr0"),
        ("security-groups", b"default\nweb"),
        ("instance-type", b"m1.tiny"),
        ("instance-action", b"none"),
        ("placement", b"availability-zone"),
        ("placement/availability-zone", b"nova"),
        ("block-device-mapping", b"ami\nroot"),
        ("block-device-mapping/ami", b"vda"),
        ("block-device-mapping/root", b"/dev/vda"),
        ("public-keys", b"0=mykey"),
        ("public-keys/0", b"openssh-key"),
        ("public-keys/0/", b"openssh-key"),
        ("public-keys/0/openssh-key", KEY.encode()),
    ],
)
def test_ec2_leaves(leaf, body):
    assert get(f"/latest/meta-data/{leaf}") == body
    assert get(f"/2009-04-04/meta-data/{leaf}") == body


def test_user_data_is_served_as_bytes():
    assert get("/latest/user-data") == b"#cloud-config\n"
    assert get("/openstack/latest/user_data") == b"#cloud-config\n"


@pytest.mark.parametrize(
    "path",
    [
        "/9999-99-99",
        "/9999-99-99/meta-data/instance-id",
        "/latest/meta-data/nope",
        "/latest/meta-data/hostname/x",
        "/latest/meta-data/security-groups/default",
        "/latest/meta-data/public-keys/1",
        "/openstack/2011-01-01/meta_data.json",
        "/openstack/latest/nope",
        "/openstack/content/0000",
        "/openstack/2013-04-04/vendor_data.json",
        "/openstack/2016-06-30/vendor_data2.json",
        "/openstack/2012-08-10/password",
    ],
)
def test_not_found(path):
    assert get(path) is None


def test_public_and_local_ip_without_floating():
    md = plan.InstanceMetadata(
        uuid="u", ec2_id="i-00000001", hostname="h", fixed_ip="10.0.0.2",
        reservation_id="r-1", domain="",
    )  # fmt: skip
    assert get("/latest/meta-data/public-ipv4", md) == b""
    assert get("/latest/meta-data/hostname", md) == b"h"


def test_several_keys_are_numbered_in_order():
    md = plan.InstanceMetadata(
        uuid="u", ec2_id="i-00000001", hostname="h", fixed_ip="10.0.0.2",
        reservation_id="r-1", public_keys={"a": "ssh-rsa A", "b": "ssh-rsa B"},
    )  # fmt: skip
    assert get("/latest/meta-data/public-keys/", md) == b"0=a\n1=b"
    assert get("/latest/meta-data/public-keys/1/openssh-key", md) == (
        b"ssh-rsa B"
    )


def test_openstack_versions_listing():
    assert get("/openstack") == (
        b"2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n"
        b"2016-10-06\n2017-02-22\nlatest"
    )
    assert get("/openstack/") == get("/openstack")


ALL_FILES = [
    "meta_data.json", "user_data", "password", "vendor_data.json",
    "network_data.json", "vendor_data2.json",
]  # fmt: skip


@pytest.mark.parametrize(
    ("version", "count"),
    [
        ("2012-08-10", 2),
        ("2013-04-04", 3),
        ("2013-10-17", 4),
        ("2015-10-15", 5),
        ("2016-06-30", 5),
        ("2016-10-06", 6),
        ("2017-02-22", 6),
        ("latest", 6),
    ],
)
def test_openstack_version_listing(version, count):
    listing = "\n".join(ALL_FILES[:count]).encode()
    assert get(f"/openstack/{version}") == listing
    assert get(f"/openstack/{version}/") == listing


def test_meta_data_json_latest_literal():
    answer = plan.MetadataTree(MD).get(
        "/openstack/latest/meta_data.json", SEED
    )
    assert answer is not None
    assert answer.content_type == "application/json"
    assert answer.body == (
        b'{"uuid": "b65cee2f-8c69-4aeb-be2f-f79742548fc2", '
        b'"public_keys": {"mykey": "ssh-rsa AAAAB3Nza alice@example"}, '
        b'"keys": [{"name": "mykey", "type": "ssh", '
        b'"data": "ssh-rsa AAAAB3Nza alice@example"}], '
        b'"hostname": "vm1.novalocal", "name": "web server", '
        b'"launch_index": 0, "availability_zone": "nova", '
        b'"random_seed": "AAECAwQFBgc=", "project_id": "demo", '
        b'"devices": []}'
    )


def test_meta_data_json_folsom_has_no_seed_project_or_devices():
    md = plan.InstanceMetadata(
        uuid="u", ec2_id="i-00000001", hostname="h", fixed_ip="10.0.0.2",
        reservation_id="r-1", meta={"dsmode": "net"},
    )  # fmt: skip
    assert json.loads(get("/openstack/2012-08-10/meta_data.json", md)) == {
        "uuid": "u",
        "meta": {"dsmode": "net"},
        "hostname": "h.novalocal",
        "name": "h",
        "launch_index": 0,
        "availability_zone": "nova",
    }


def test_network_data_json_flat_dhcp_literal():
    answer = plan.MetadataTree(MD).get("/openstack/latest/network_data.json")
    assert answer is not None
    assert answer.content_type == plan.TEXT  # nova set no JSON type here
    assert answer.body == (
        b'{"links": [{"id": "interface0", '
        b'"vif_id": "9c3e6b4e-2f0d-4b5e-9d2a-3b0f6a1e7c11", '
        b'"type": "bridge", "mtu": null, '
        b'"ethernet_mac_address": "fa:16:3e:12:34:56"}], '
        b'"networks": [{"id": "network0", "type": "ipv4_dhcp", '
        b'"link": "interface0", '
        b'"network_id": "5f1c7a2e-8b3d-4c6e-a1f0-2d9e8c7b6a55"}], '
        b'"services": [{"type": "dns", "address": "8.8.4.4"}, '
        b'{"type": "dns", "address": "8.8.8.8"}]}'
    )


def test_network_data_static_vif_and_shared_dns():
    static = plan.MetadataVif(
        vif_id="v2", mac="fa:16:3e:00:00:02", network_id="n2",
        address="10.1.0.5", netmask="255.255.0.0", gateway="10.1.0.1",
        dns=("8.8.4.4",), dhcp=False, mtu=1450,
    )  # fmt: skip
    md = plan.InstanceMetadata(
        uuid="u", ec2_id="i-00000001", hostname="h", fixed_ip="10.0.0.3",
        reservation_id="r-1", vifs=(VIF, static),
    )  # fmt: skip
    data = metadata_json.network_data(md)
    assert data["links"][1] == {
        "id": "interface1", "vif_id": "v2", "type": "bridge", "mtu": 1450,
        "ethernet_mac_address": "fa:16:3e:00:00:02",
    }  # fmt: skip
    assert data["networks"][1] == {
        "id": "network1",
        "type": "ipv4",
        "link": "interface1",
        "ip_address": "10.1.0.5",
        "netmask": "255.255.0.0",
        "routes": [
            {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.1.0.1"}
        ],
        "network_id": "n2",
        "services": [{"type": "dns", "address": "8.8.4.4"}],
    }
    assert data["services"] == [
        {"type": "dns", "address": "8.8.4.4"},
        {"type": "dns", "address": "8.8.8.8"},
    ]


def test_network_data_without_vifs_is_empty_object():
    md = plan.InstanceMetadata(
        uuid="u", ec2_id="i-00000001", hostname="h", fixed_ip="10.0.0.2",
        reservation_id="r-1",
    )  # fmt: skip
    assert get("/openstack/latest/network_data.json", md) == b"{}"


def test_vendor_data_default_and_static():
    assert get("/openstack/latest/vendor_data.json") == b"{}"
    assert get("/openstack/latest/vendor_data2.json") == b"{}"
    tree = plan.MetadataTree(MD, vendor_data={"region": "one"})
    assert tree.get("/openstack/latest/vendor_data.json").body == (
        b'{"region": "one"}'
    )
    assert tree.get("/openstack/latest/vendor_data2.json").body == (
        b'{"static": {"region": "one"}}'
    )


def test_password_is_empty_when_never_posted():
    assert get("/openstack/latest/password") == b""


def test_block_device_mapping_like_nova():
    assert plan.block_device_mapping(None) == {
        "ami": "sda1",
        "ephemeral0": "sda2",
        "root": "/dev/sda1",
        "swap": "sda3",
    }
    assert plan.block_device_mapping("/dev/vda", "/dev/vdb", "/dev/vdc") == {
        "ami": "vda",
        "root": "/dev/vda",
        "ephemeral0": "/dev/vdb",
        "swap": "/dev/vdc",
    }


@pytest.mark.parametrize(
    ("path", "tokens"),
    [
        ("/", []),
        ("//latest//meta-data/", ["latest", "meta-data"]),
        ("/a/./b/../c", ["a", "c"]),
        ("/../../latest", ["latest"]),
    ],
)
def test_normalize(path, tokens):
    assert plan.normalize(path) == tokens
