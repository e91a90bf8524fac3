"""The edges of ``export neutron`` and ``migration report``: read what
flatnet serves from its database, write the export's files.

Files are written atomically one by one (tmp + fsync + rename,
:func:`flatnet.linux.files.replace_file`) after the whole export was
rendered and validated in memory, so bad input writes nothing.
"""

from __future__ import annotations

import json
import os

import netaddr

from flatnet import exception
from flatnet.db import api as db_api
from flatnet.db import nova_neutron
from flatnet.linux import files
from flatnet.migrate import neutron_export as nx
from flatnet.migrate import neutron_floating as nf
from flatnet.migrate import neutron_secgroups as ns
from flatnet.migrate import report
from flatnet.model import Network

Inputs = tuple[
    list[Network], list[nx.PortInput], dict[int, list[netaddr.IPAddress]]
]


def read_inputs(db: db_api.Database) -> Inputs:
    """Live networks, one port per allocated fixed IP (with its VIF's
    MAC and its instance), and each network's reserved addresses."""
    networks = db_api.network_list(db)
    ports: list[nx.PortInput] = []
    reserved: dict[int, list[netaddr.IPAddress]] = {}
    for row in db_api.fixed_ip_list(db):
        if row.reserved:
            reserved.setdefault(row.network_id, []).append(row.address)
        if row.allocated and row.instance_uuid and row.mac is not None:
            ports.append(
                nx.PortInput(
                    network_id=row.network_id,
                    mac=str(row.mac.format(netaddr.mac_unix_expanded)),
                    address=row.address,
                    hostname=row.hostname or "",
                    instance_uuid=row.instance_uuid,
                    host=row.host,
                )
            )
    return networks, ports, reserved


def read_extras(
    db: db_api.Database,
    networks: list[Network],
    ports: list[nx.PortInput],
    allow_same_net_traffic: bool = True,
) -> report.Extras:
    """Security groups, memberships and floating IPs (each associated
    one with the network uuid and MAC of its fixed address's port)."""
    rows, members = nova_neutron.read_groups(db)
    groups = [ns.GroupInput(*row) for row in rows]
    uuids = {n.id: n.uuid for n in networks}
    by_address = {
        p.address: (uuids[p.network_id], p.mac)
        for p in ports
        if p.network_id in uuids
    }
    floating = [
        nf.FloatingInput(
            address=f.address,
            pool=f.pool,
            project_id=f.project_id,
            fixed_address=f.fixed_address,
            port=by_address.get(f.fixed_address)
            if f.fixed_address is not None
            else None,
        )  # fmt: skip
        for f in db_api.floating_list(db)
    ]
    return report.Extras(
        groups=groups,
        members=members,
        floating=floating,
        allow_same_net_traffic=allow_same_net_traffic,
    )


def export_files(export: report.Export) -> dict[str, str]:
    """Every file of an export directory: the agent's files, the API
    bodies (JSON), each network's dnsmasq argv and the options."""
    out = dict(export.files)
    for kind, bodies in export.api.items():
        out[f"api/{kind}.json"] = json.dumps(bodies, indent=2) + "\n"
    for uuid, argv in export.argv.items():
        out[f"dhcp/{uuid}/dnsmasq.argv"] = "\n".join(argv) + "\n"
    out["neutron-options.txt"] = "\n".join(export.options) + "\n"
    if export.refs:
        out["api/refs.json"] = json.dumps(export.refs, indent=2) + "\n"
    return out


def write_export(directory: str, contents: dict[str, str]) -> list[str]:
    """Write ``contents`` (relative path -> text) under ``directory``.

    Raises InvalidInput if ``directory`` exists and is not a directory.
    """
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise exception.InvalidInput(reason=f"{directory} is not a directory")
    written = []
    for rel, text in sorted(contents.items()):
        path = os.path.join(directory, rel)
        files.ensure_dir(os.path.dirname(path))
        files.replace_file(path, text)
        written.append(path)
    return written
