"""Migration benchmark (SQLite): import a nova 16.0.0 database, export
it to Neutron, compute the migration report.

    .venv/bin/python bench/nova_import.py [--instances 10000] [--repeat 3]

The nova database (tests/nova_schema.py: one FlatDHCP /18 with every
fixed_ips row, the instances, their VIFs and floating IPs, a VLAN
network, soft-deleted rows, a default security group per project with
a membership per instance, a group with four rules) is built once; each
run imports it into a fresh flatnet database and times the import (read
+ plan + one write transaction), a second (no-op) import, the export
(read flatnet's database, networks, ports, security groups and floating
IPs, and render every API body and DHCP agent file) and the report.
Goal: import under 10 s at 10,000 instances. The load average is
printed with the figures (other jobs distort them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flatnet.db import api  # noqa: E402
from flatnet.migrate import neutron_export as nx  # noqa: E402
from flatnet.migrate import nova_import, report, writer  # noqa: E402
from tests import nova_schema  # noqa: E402


def _cidr(instances: int) -> str:
    prefix = 32 - max(8, (instances + 64).bit_length())
    return f"10.0.0.0/{prefix}"


def run_once(tmp: Path, nova_url: str, n: int) -> dict[str, float]:
    db = api.Database(f"sqlite:///{tmp}/flatnet-{n}.sqlite")
    api.sync(db)
    started = time.monotonic()
    summary = nova_import.import_nova(db, nova_url)
    figures = {"import": time.monotonic() - started}
    started = time.monotonic()
    again = nova_import.import_nova(db, nova_url)
    figures["reimport"] = time.monotonic() - started
    assert summary.changed
    assert not again.changed
    started = time.monotonic()
    networks, ports, reserved = writer.read_inputs(db)
    extras = writer.read_extras(db, networks, ports)
    export = report.build_export(
        networks, ports, reserved, nx.NeutronSettings(), extras=extras
    )
    writer.export_files(export)
    figures["export"] = time.monotonic() - started
    started = time.monotonic()
    flat = report.FlatnetDhcp()
    report.guest_report(networks, ports, export.dhcp_ports, flat,
                        nx.NeutronSettings())  # fmt: skip
    figures["report"] = time.monotonic() - started
    figures["ports"] = len(ports)
    figures["rows"] = sum(summary.imported.values())
    figures["rules"] = len(export.api["security_group_rules"])
    db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        nova_url = f"sqlite:///{tmp}/nova.sqlite"
        engine = create_engine(nova_url)
        data = nova_schema.NovaData(
            instances=args.instances, cidr=_cidr(args.instances)
        )
        nova_schema.populate(engine, data)
        engine.dispose()
        runs = [run_once(tmp, nova_url, i) for i in range(args.repeat)]
    print(f"nova database: {args.instances} instances, {data.cidr}")
    for key in ("import", "reimport", "export", "report"):
        values = [r[key] for r in runs]
        print(
            f"{key:>9}: median {statistics.median(values):.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f}, "
            f"{len(values)} runs)"
        )
    print(f"    ports: {int(runs[0]['ports'])}, rows imported: "
          f"{int(runs[0]['rows'])}, Neutron rules: "
          f"{int(runs[0]['rules'])}")  # fmt: skip
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average: {load}")


if __name__ == "__main__":
    main()
