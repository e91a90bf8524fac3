"""Rendering of flatnet-manage output: nova-style tables and JSON (pure).

Tables follow nova-manage: columns left-aligned and separated by tabs;
each column is as wide as its widest cell (at least nova's width), so a
long value never shifts the columns after it. Values are made printable
first (no newline or tab can break a row). JSON is sorted, indented and
ends with a newline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import netaddr

from flatnet import mac, model

NETWORK_HEADERS = (
    "id", "IPv4", "IPv6", "start address", "DNS1", "DNS2", "VlanID",
    "project", "uuid", "label", "bridge",
)  # fmt: skip
NETWORK_WIDTHS = (5, 18, 15, 15, 15, 15, 15, 15, 15, 15, 15)
FIXED_HEADERS = (
    "network", "IP address", "hostname", "host", "MAC", "allocated",
    "leased", "reserved",
)  # fmt: skip
FIXED_WIDTHS = (18, 15, 15, 15, 17, 9, 6, 8)
VIF_HEADERS = (
    "instance", "uuid", "MAC", "IP", "network", "bridge", "gateway", "DNS",
)  # fmt: skip
VIF_WIDTHS = (15, 36, 17, 15, 15, 15, 15, 15)
INSTANCE_HEADERS = ("instance", "uuid", "host", "addresses", "created")
INSTANCE_WIDTHS = (15, 36, 15, 15, 19)


def _cell(value: Any) -> str:
    text = "None" if value is None else str(value)
    return "".join(c if c.isprintable() else "?" for c in text)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    widths: Sequence[int] = (),
) -> str:
    """Tab-separated rows, each column padded to its widest cell and at
    least to ``widths`` (nova-manage's %-Ns)."""
    cells = [[_cell(c) for c in row] for row in (headers, *rows)]
    width = list(widths) + [0] * (len(headers) - len(widths))
    for row in cells:
        for i, text in enumerate(row[: len(width)]):
            width[i] = max(width[i], len(text))
    return "".join(
        "\t".join(
            text.ljust(width[i] if i < len(width) else 0)
            for i, text in enumerate(row)
        ).rstrip()
        + "\n"
        for row in cells
    )


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 floating IP``, ``2 floating IPs`` (``many`` if irregular)."""
    word = one if count == 1 else (many or one + "s")
    return f"{count:,} {word}"


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def _ip(value: netaddr.IPAddress | None) -> str | None:
    return None if value is None else str(value)


def network_dict(n: model.Network) -> dict[str, Any]:
    return {
        "id": n.id, "uuid": n.uuid, "label": n.label, "cidr": str(n.cidr),
        "netmask": str(n.netmask), "broadcast": str(n.broadcast),
        "gateway": _ip(n.gateway), "dhcp_server": _ip(n.dhcp_server),
        "dhcp_start": _ip(n.dhcp_start), "dns1": _ip(n.dns1),
        "dns2": _ip(n.dns2), "bridge": n.bridge,
        "bridge_interface": n.bridge_interface, "mtu": n.mtu,
        "multi_host": n.multi_host, "host": n.host,
        "project_id": n.project_id, "generation": n.generation,
    }  # fmt: skip


def network_row(n: model.Network) -> tuple[Any, ...]:
    return (
        n.id, n.cidr, None, n.dhcp_start, n.dns1, n.dns2, None,
        n.project_id, n.uuid, n.label, n.bridge,
    )  # fmt: skip


def networks_table(networks: Sequence[model.Network]) -> str:
    if not networks:
        return "No networks found\n"
    return table(
        NETWORK_HEADERS, [network_row(n) for n in networks], NETWORK_WIDTHS
    )


def vif_dict(info: model.NetworkInfo) -> dict[str, Any]:
    n = info.network
    return {
        "mac": mac.format_mac(info.vif.address),
        "vif_uuid": info.vif.uuid,
        "address": str(info.address),
        "network": n.label,
        "network_uuid": n.uuid,
        "bridge": n.bridge,
        "cidr": str(n.cidr),
        "netmask": str(n.netmask),
        "gateway": _ip(n.gateway),
        "dhcp_server": _ip(n.dhcp_server),
        "dns": [str(d) for d in (n.dns1, n.dns2) if d is not None],
        "generation": n.generation,
    }


def instance_dict(
    instance: model.Instance, infos: Sequence[model.NetworkInfo]
) -> dict[str, Any]:
    return {
        "instance": instance.hostname,
        "display_name": instance.display_name,
        "uuid": instance.uuid,
        "host": instance.host,
        "interfaces": [vif_dict(i) for i in infos],
    }


def vifs_table(
    instance: model.Instance, infos: Sequence[model.NetworkInfo]
) -> str:
    rows = [
        (
            instance.hostname, instance.uuid, mac.format_mac(i.vif.address),
            i.address, i.network.label, i.network.bridge, i.network.gateway,
            ",".join(str(d) for d in (i.network.dns1, i.network.dns2) if d),
        )
        for i in infos
    ]  # fmt: skip
    if not rows:
        rows = [(instance.hostname, instance.uuid) + ("-",) * 6]
    return table(VIF_HEADERS, rows, VIF_WIDTHS)


def instances_table(
    instances: Sequence[model.Instance],
    addresses: Mapping[str, Sequence[str]],
) -> str:
    if not instances:
        return "No instances found\n"
    rows = [
        (i.hostname, i.uuid, i.host, ",".join(addresses.get(i.uuid, ())),
         i.created_at.strftime("%Y-%m-%d %H:%M:%S") if i.created_at else None)
        for i in instances
    ]  # fmt: skip
    return table(INSTANCE_HEADERS, rows, INSTANCE_WIDTHS)


def fixed_dict(f: model.FixedIpView) -> dict[str, Any]:
    return {
        "network": str(f.network_cidr), "network_label": f.network_label,
        "address": str(f.address), "hostname": f.hostname, "host": f.host,
        "instance_uuid": f.instance_uuid,
        "mac": mac.format_mac(f.mac) if f.mac is not None else None,
        "allocated": f.allocated, "leased": f.leased, "reserved": f.reserved,
    }  # fmt: skip


def fixed_summary(summary: Sequence[Any]) -> str:
    """One line per network: how many addresses and how they are used
    (rows of :class:`flatnet.db.api.FixedIpSummary`)."""
    lines = []
    for s in summary:
        total = plural(s.total, "address", "addresses")
        lines.append(
            f"network {s.label} ({s.cidr}): {total}, "
            f"{s.allocated:,} allocated, {s.leased:,} leased, "
            f"{s.reserved:,} reserved, {s.free:,} free\n"
        )
    return "".join(lines)


def fixed_table(fixed: Sequence[model.FixedIpView]) -> str:
    if not fixed:
        return "No fixed IP found.\n"
    rows = [
        (f.network_cidr, f.address, f.hostname, f.host,
         mac.format_mac(f.mac) if f.mac is not None else None,
         f.allocated, f.leased, f.reserved)
        for f in fixed
    ]  # fmt: skip
    return table(FIXED_HEADERS, rows, FIXED_WIDTHS)


def floating_dict(f: model.FloatingIp) -> dict[str, Any]:
    return {
        "address": str(f.address),
        "pool": f.pool,
        "interface": f.interface,
        "fixed_address": _ip(f.fixed_address),
        "instance": f.instance_hostname,
        "instance_uuid": f.instance_uuid,
        "project_id": f.project_id,
        "host": f.host,
    }


def floating_table(found: Sequence[model.FloatingIp]) -> str:
    """nova-manage floating list's columns plus fixed address and host."""
    if not found:
        return "No floating IP addresses have been defined.\n"
    return table(
        ("project", "address", "instance", "pool", "interface", "fixed",
         "host"),
        [
            (f.project_id, f.address, f.instance_hostname or f.instance_uuid,
             f.pool, f.interface, f.fixed_address, f.host)
            for f in found
        ],
    )  # fmt: skip
