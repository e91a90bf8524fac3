"""flatnet-manage floating ... (nova-manage floating, plus associate)."""

from __future__ import annotations

import pytest

from tests.unit.cli_harness import Cli


@pytest.fixture
def cli(cli: Cli) -> Cli:
    """The base CLI fixture (one network) plus two instances."""
    cli.ok("instance", "create", "vm1")
    cli.ok("instance", "create", "vm2")
    return cli


def test_create_uses_hosts_of_the_cidr_and_defaults(cli) -> None:
    assert "Created 14 floating IPs in pool public" in cli.ok(
        "floating",
        "create",
        "--ip-range",
        "172.24.4.0/28",
        "--pool",
        "public",
        "--interface",
        "eth1",
    )
    cli.ok("floating", "create", "--ip_range", "192.0.2.7")
    found = cli.json("floating", "list")
    assert [f["address"] for f in found][:2] == ["172.24.4.1", "172.24.4.2"]
    assert found[-1] == {
        "address": "192.0.2.7",
        "pool": "nova",
        "interface": "eth0",
        "fixed_address": None,
        "instance": None,
        "instance_uuid": None,
        "project_id": None,
        "host": None,
    }  # nova defaults: default_floating_pool, public_interface


def test_empty_list_says_so(cli) -> None:
    assert cli.ok("floating", "list") == (
        "No floating IP addresses have been defined.\n"
    )


def test_associate_is_idempotent_and_refuses_to_steal(cli) -> None:
    cli.ok(
        "floating", "create", "--ip-range", "172.24.4.0/29", "--pool", "public"
    )
    out = cli.ok(
        "floating", "associate", "--address", "172.24.4.3", "--instance", "vm1"
    )
    assert "172.24.4.3 with vm1 (10.0.0.2)" in out
    before = cli.dump()
    cli.ok(
        "floating", "associate", "--address", "172.24.4.3", "--instance", "vm1"
    )
    assert cli.dump() == before  # idempotent: nothing changed
    # another instance: refused (nova moved it silently) ...
    rc, _, err = cli(
        "floating", "associate", "--address", "172.24.4.3", "--instance", "vm2"
    )
    assert rc == 2
    assert "172.24.4.3 is associated with" in err
    assert cli.dump() == before
    # ... until it is disassociated (which is idempotent too)
    cli.ok("floating", "disassociate", "--address", "172.24.4.3")
    assert "was not associated" in cli.ok(
        "floating", "disassociate", "--address", "172.24.4.3"
    )
    cli.ok(
        "floating", "associate", "--address", "172.24.4.3", "--instance", "vm2"
    )
    [row] = [
        f for f in cli.json("floating", "list") if f["address"] == "172.24.4.3"
    ]
    assert (row["fixed_address"], row["host"]) == ("10.0.0.3", "node1")


def test_associate_from_pool_until_exhausted(cli) -> None:
    cli.ok("floating", "create", "--ip-range", "172.24.4.5", "--pool", "tiny")
    assert "172.24.4.5" in cli.ok(
        "floating", "associate", "--pool", "tiny", "--instance", "vm1"
    )
    before = cli.dump()
    rc, _, err = cli(
        "floating", "associate", "--pool", "tiny", "--instance", "vm2"
    )
    assert (rc, err) == (2, "error: No more floating IPs in pool tiny\n")
    assert cli.dump() == before


def test_instance_delete_disassociates_its_floating_ip(cli) -> None:
    cli.ok("floating", "create", "--ip-range", "172.24.4.9")
    cli.ok(
        "floating", "associate", "--address", "172.24.4.9", "--instance", "vm1"
    )
    cli.ok("instance", "delete", "vm1")
    [row] = cli.json("floating", "list")
    assert row["fixed_address"] is None


@pytest.mark.parametrize(("argv", "message"), [
    (("create", "--ip-range", "172.24.4.0/31"), "at least /30"),
    (("create", "--ip-range", "10.0.0.0/8"), "max_network_size"),
    (("create", "--ip-range", "172.24.4.300"), "not an IPv4 address"),
    (("create", "--ip-range", "1.2.3.4", "--interface", "eth1\nx"),
     "Invalid network device name"),
    (("create", "--ip-range", "1.2.3.4", "--pool", " bad"), "pool"),
    (("create", "--ip-range", "172.24.4.1"), "already exists"),
    (("associate", "--address", "172.24.4.99", "--instance", "vm1"),
     "172.24.4.99 is not in any floating IP pool"),
    (("associate", "--address", "172.24.4.1", "--instance", "vm2"),
     "is associated with"),
    (("associate", "--address", "172.24.4.1", "--instance", "nope"),
     "Instance nope could not be found"),
    (("associate", "--pool", "nopool", "--instance", "vm1"),
     "pool nopool could not be found"),
    (("disassociate", "--address", "172.24.4.99"), "not in any floating"),
    (("delete", "--ip-range", "172.24.4.1"), "is associated"),
    (("delete", "--ip-range", "172.24.4.4/30"), "not in any floating"),
])  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    cli, argv, message
) -> None:
    cli.ok("floating", "create", "--ip-range", "172.24.4.1")
    cli.ok("floating", "create", "--ip-range", "172.24.4.2")
    cli.ok(
        "floating", "associate", "--address", "172.24.4.1", "--instance", "vm1"
    )
    before = cli.dump()
    rc, out, err = cli("floating", *argv)
    assert rc == 2, (out, err)
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert message in err
    assert cli.dump() == before
