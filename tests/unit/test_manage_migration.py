"""manage_migration's commands through flatnet-manage's own dispatcher
(registered with ``add(groups, common)`` as the lead will wire them)."""

from __future__ import annotations

import argparse
import io
import json

import pytest
from sqlalchemy import create_engine, text

from flatnet.cmd import cli, manage, manage_migration, manage_network
from tests import nova_schema


class Run:
    def __init__(self, tmp_path) -> None:
        self.tmp = tmp_path
        self.conf = tmp_path / "flatnet.conf"
        self.conf.write_text(
            f"[DEFAULT]\nstate_path = {tmp_path}/state\nhost = nethost\n"
            "dhcp_domain = novalocal\n"
        )
        self.nova = f"sqlite:///{tmp_path}/nova.sqlite"
        engine = create_engine(self.nova)
        nova_schema.populate(engine)
        engine.dispose()
        self("db", "sync")

    def parser(self) -> argparse.ArgumentParser:
        common = cli.Parser(add_help=False)
        common.add_argument("--config-file", action="append",
                            dest="config_files")  # fmt: skip
        parser = cli.Parser(prog="flatnet-manage", parents=[common])
        groups = parser.add_subparsers(dest="group")
        manage_network.add_db(groups, common)
        manage_migration.add(groups, common)
        return parser

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        args = self.parser().parse_args(
            [*argv[:2], "--config-file", str(self.conf), *argv[2:]]
        )
        out, err = io.StringIO(), io.StringIO()
        rc = manage._dispatch(args, out, err)
        return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def run(tmp_path) -> Run:
    return Run(tmp_path)


def test_import_then_nothing_to_import(run):
    rc, out, _ = run("import", "nova", "--connection", run.nova)
    assert rc == 0
    assert out.startswith("imported from nova database (schema version 362)")
    rc, out, _ = run("import", "nova", "--connection", run.nova,
                     "--format", "json")  # fmt: skip
    data = json.loads(out)
    assert rc == 0
    assert data["changed"] is False
    assert data["unchanged"]["fixed_ips"] == 256


def test_bad_source_is_one_line_exit_2(run):
    rc, out, err = run("import", "nova", "--connection",
                       f"sqlite:///{run.tmp}/nope.sqlite")  # fmt: skip
    assert (rc, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("error: Invalid input: nova database")


def test_report_exit_codes_and_export(run):
    run("import", "nova", "--connection", run.nova)
    rc, out, _ = run("migration", "report", "--format", "json")
    assert rc == 3
    assert {d["field"] for d in json.loads(out)} == {
        "hostname", "domain", "dns", "serverid"}  # fmt: skip
    rc, out, _ = run("migration", "report", "--preserve")
    assert rc == 0
    assert out.startswith("no differences")
    target = run.tmp / "export"
    rc, out, _ = run("export", "neutron", "--output", str(target),
                     "--preserve")  # fmt: skip
    assert rc == 0
    ports = json.loads((target / "api" / "ports.json").read_text())
    assert len(ports) == 11  # 10 instances + the reserved DHCP port
    assert ports[-1]["port"]["device_id"] == "reserved_dhcp_port"
    hosts = next(target.glob("dhcp/*/host")).read_text()
    assert hosts.splitlines()[0].endswith(",cirros.novalocal.,10.0.0.2")
    assert (
        "dns_domain = novalocal"
        in (target / "neutron-options.txt").read_text()
    )


def test_export_carries_groups_and_floating_ips(run):
    run("import", "nova", "--connection", run.nova)
    target = run.tmp / "export"
    rc, _, _ = run("export", "neutron", "--output", str(target))
    assert rc == 0
    api = target / "api"

    def load(name: str) -> list:
        return json.loads((api / f"{name}.json").read_text())

    assert [g["security_group"]["name"] for g in load("security_groups")] == [
        "web"]  # fmt: skip
    assert len(load("default_security_groups")) == 3  # one per project
    rules = [r["security_group_rule"] for r in load("security_group_rules")]
    # nova's 9 rules (2 per default group, web's 3: its IPv6 one is not
    # imported), one same-net rule per group (allow_same_net_traffic
    # defaults to True), 2 egress rules per group
    assert len(rules) == 9 + 4 + 4 * 2
    assert sum(r["direction"] == "egress" for r in rules) == 8
    floating = [f["floatingip"] for f in load("floatingips")]
    assert len(floating) == 4  # 3 associated, 1 only allocated
    assert sum("port_id" in f for f in floating) == 3
    refs = json.loads((api / "refs.json").read_text())
    assert all(f["port_id"] in refs for f in floating if "port_id" in f)
    ports = load("ports")
    cirros = next(
        p["port"] for p in ports
        if p["port"]["fixed_ips"][0]["ip_address"] == "10.0.0.2"
    )  # fmt: skip
    assert len(cirros["security_groups"]) == 2  # default and web


def test_report_shows_the_names_the_import_changed(run):
    engine = create_engine(run.nova)
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE instances SET hostname = 'vm-1' WHERE hostname = 'vm-2'"
        ))  # fmt: skip
    engine.dispose()
    rc, out, _ = run("import", "nova", "--connection", run.nova,
                     "--format", "json")  # fmt: skip
    (rename,) = json.loads(out)["renamed"]
    rc, out, _ = run("migration", "report", "--preserve")
    assert (rc, out.startswith("no differences")) == (0, True)
    rc, out, _ = run("migration", "report", "--preserve", "--format",
                     "json", "--nova-connection", run.nova)  # fmt: skip
    assert rc == 3
    (entry,) = json.loads(out)
    new = rename["flatnet_hostname"]
    assert (entry["field"], entry["nova"], entry["flatnet"]) == (
        "hostname", "vm-1", new)  # fmt: skip
    assert entry["neutron"] == new  # --preserve keeps flatnet's name
    assert entry["instance"] == rename["instance_uuid"]
    rc, out, _ = run("migration", "report", "--nova-connection", run.nova)
    assert rc == 3
    assert "renamed at import: under nova this guest was 'vm-1'" in out
