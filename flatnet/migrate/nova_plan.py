"""PURE: which of nova's rows become which of flatnet's, and why not.

:func:`plan_import` takes the rows :func:`flatnet.db.nova_source.read_nova`
read (dicts keyed by nova's column names) and returns an
:class:`ImportPlan`: flatnet's rows per table (same primary keys, so
``NETWORK_ID``, ``NW-<vif id>`` tags and instance ids stay what nova
used) and, per table, the count of rows skipped and of values adjusted,
each with its reason.

What is imported: live flat networks (``vlan`` NULL, with an IPv4
``cidr`` and a bridge); their live fixed IPs with every flag
(``allocated``, ``leased``, ``reserved``, ``host``) and timestamp
(``updated_at`` orders flatnet's allocation, as it did nova's); the VIFs
and instances those reference, soft-deleted ones included (an address
deallocated but still leased points at its deleted VIF and instance
until the DHCP release, nova ``deallocate_fixed_ip``); live instances'
other VIFs on imported networks; live floating IPs with their
association; security groups, their rules and memberships
(:mod:`flatnet.migrate.nova_secgroups`). Live instances sharing a host
name are renamed deterministically (:mod:`flatnet.migrate.nova_names`),
each rename listed in :attr:`ImportPlan.renamed`.

Raises InvalidInput (not an address/MAC, no host name, a bad rule) or
Conflict (two live networks on one bridge or label, overlapping CIDRs:
flatnet's unique constraints).
"""

from __future__ import annotations

import collections
import dataclasses
import uuid as uuidlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import netaddr

from flatnet import exception, ipam, mac
from flatnet.migrate import nova_names, nova_secgroups, nova_values

Row = dict[str, Any]
Rows = Mapping[str, Sequence[Mapping[str, Any]]]
#: flatnet tables in insert order (foreign keys point backwards).
TABLES = (
    "networks",
    "instances",
    "virtual_interfaces",
    "fixed_ips",
    "floating_ips",
    *nova_secgroups.TABLES,
)
DELETED = "deleted in nova (soft-deleted row)"
SKIPPED_NETWORK = "on a network that is not imported"
NOT_USED = "not used by flatnet"
_STAMPS = ("created_at", "updated_at", "deleted_at", "deleted")
_UUID_NS = uuidlib.UUID("8c3b1d6e-5f0a-4d55-9d3e-6e6f76616e65")


@dataclasses.dataclass
class ImportPlan:
    """flatnet's rows per table, and what was skipped or adjusted."""

    version: int
    rows: dict[str, list[Row]] = dataclasses.field(
        default_factory=lambda: {t: [] for t in TABLES}
    )
    skipped: dict[str, collections.Counter[str]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    adjusted: dict[str, collections.Counter[str]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    renamed: list[nova_names.Rename] = dataclasses.field(default_factory=list)

    def skip(self, table: str, reason: str, count: int = 1) -> None:
        self.skipped[table][reason] += count

    def adjust(self, table: str, what: str) -> None:
        self.adjusted[table][what] += 1


def _stamps(row: Mapping[str, Any]) -> Row:
    values = {k: row.get(k) for k in _STAMPS}
    values["deleted"] = int(values["deleted"] or 0)
    return values


def _uuid(row: Mapping[str, Any], plan: ImportPlan, table: str) -> str:
    if row.get("uuid"):
        return str(row["uuid"])
    plan.adjust(table, "uuid was empty: derived from the row id")
    return str(uuidlib.uuid5(_UUID_NS, f"{table}:{row['id']}"))


def _unique(rows: Iterable[Row], key: str, what: str) -> None:
    seen: dict[Any, Any] = {}
    for row in rows:
        value = row[key]
        if value in seen:
            raise exception.Conflict(
                reason=f"nova {what} {seen[value]} and {row['id']} share "
                f"{key} {value!r}; flatnet allows one live {what} per {key}"
            )
        seen[value] = row["id"]


# --- networks -----------------------------------------------------------
def _network_skip(row: Mapping[str, Any]) -> str | None:
    if row.get("deleted"):
        return DELETED
    if row.get("vlan") is not None:
        return "VLAN network (VlanManager; flatnet serves flat networks)"
    if not row.get("cidr"):
        return "no IPv4 cidr (IPv6-only network)"
    if not row.get("bridge"):
        return "no bridge"
    return None


def _network_row(row: Mapping[str, Any], plan: ImportPlan) -> Row:
    t = "networks"
    cidr = netaddr.IPNetwork(str(nova_values.cidr_text(row["cidr"], t, row)))
    values: Row = {"id": int(row["id"]), "uuid": _uuid(row, plan, t)}
    for key in ("gateway_v6", "netmask_v6", "gateway", "dns1", "dns2",
                "dhcp_start", "dhcp_server"):  # fmt: skip
        values[key] = nova_values.ip_text(row.get(key), t, row)
    for key in ("netmask", "broadcast"):
        values[key] = nova_values.ip_text(row.get(key), t, row)
        if values[key] is None:
            values[key] = str(getattr(cidr, key))
            plan.adjust(t, f"{key} was empty: computed from the cidr")
    for key in ("bridge", "bridge_interface", "vlan", "rxtx_base",
                "project_id", "priority", "host", "mtu"):  # fmt: skip
        values[key] = row.get(key)
    for key in ("injected", "multi_host", "share_address"):
        values[key] = bool(row.get(key))
    values["enable_dhcp"] = row.get("enable_dhcp") is not False
    label = row.get("label")
    if not label:
        label = f"network-{row['id']}"
        plan.adjust(t, "label was empty: network-<id>")
    values.update(label=label, cidr=str(cidr), **_stamps(row))
    values["cidr_v6"] = nova_values.cidr_text(row.get("cidr_v6"), t, row)
    return values


def _plan_networks(
    rows: Sequence[Mapping[str, Any]], plan: ImportPlan
) -> None:
    for row in rows:
        reason = _network_skip(row)
        if reason:
            plan.skip("networks", reason)
        else:
            plan.rows["networks"].append(_network_row(row, plan))
    nets = plan.rows["networks"]
    for key in ("label", "bridge", "uuid"):
        _unique(nets, key, "networks")
    seen: list[netaddr.IPNetwork] = []
    for net in nets:
        cidr = netaddr.IPNetwork(net["cidr"])
        ipam.check_overlap(cidr, seen)
        seen.append(cidr)


# --- fixed IPs, VIFs, instances -------------------------------------------
def _fixed_row(row: Mapping[str, Any], plan: ImportPlan) -> Row:
    t = "fixed_ips"
    values: Row = {
        "id": int(row["id"]),
        "address": nova_values.ip_text(row["address"], t, row),
        "network_id": int(row["network_id"]),
        "virtual_interface_id": row.get("virtual_interface_id"),
        "instance_uuid": row.get("instance_uuid"),
        "host": row.get("host"),
        **{k: bool(row.get(k)) for k in ("allocated", "leased", "reserved")},
        **_stamps(row),
    }
    if values["instance_uuid"] is None and values["virtual_interface_id"]:
        # nova fixed_ip_disassociate_all_by_timeout keeps the VIF id.
        values["virtual_interface_id"] = None
        plan.adjust(t, "virtual_interface_id cleared on a disassociated "
                    "address (nova's stale-timeout residue)")  # fmt: skip
    return values


def _plan_fixed(rows: Sequence[Mapping[str, Any]], plan: ImportPlan) -> None:
    nets = {n["id"] for n in plan.rows["networks"]}
    for row in rows:
        if row.get("deleted"):
            plan.skip("fixed_ips", DELETED)
        elif row.get("network_id") is None:
            plan.skip("fixed_ips", "no network_id")
        elif row["network_id"] not in nets:
            plan.skip("fixed_ips", SKIPPED_NETWORK)
        else:
            plan.rows["fixed_ips"].append(_fixed_row(row, plan))


def _vif_row(row: Mapping[str, Any], plan: ImportPlan) -> Row:
    text = row.get("address") or ""
    try:
        address = (
            text
            if nova_values.MAC.fullmatch(text)
            else (mac.format_mac(netaddr.EUI(str(text))))
        )
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise exception.InvalidInput(
            reason=f"{nova_values.where('virtual_interfaces', row)}: "
            f"{text!r} is not a MAC address"
        ) from exc
    return {
        "id": int(row["id"]),
        "address": address,
        "network_id": int(row["network_id"]),
        "instance_uuid": row["instance_uuid"],
        "uuid": _uuid(row, plan, "virtual_interfaces"),
        "tag": row.get("tag"),
        **_stamps(row),
    }


def _plan_vifs(rows: Sequence[Mapping[str, Any]], plan: ImportPlan) -> None:
    t = "virtual_interfaces"
    nets = {n["id"] for n in plan.rows["networks"]}
    wanted = {f["virtual_interface_id"] for f in plan.rows["fixed_ips"]}
    for row in rows:
        if row.get("network_id") not in nets:
            plan.skip(t, SKIPPED_NETWORK)
        elif not row.get("instance_uuid"):
            plan.skip(t, "no instance_uuid")
        elif row.get("deleted") and row["id"] not in wanted:
            plan.skip(t, DELETED)
        else:
            plan.rows[t].append(_vif_row(row, plan))


def _instance_row(row: Mapping[str, Any]) -> Row:
    if not row.get("hostname"):
        raise exception.InvalidInput(
            reason=f"nova instance {row.get('uuid')} has no hostname"
        )
    keys = ("host", "launched_on", "project_id", "user_id",
            "availability_zone")  # fmt: skip
    return {
        "id": int(row["id"]),
        "uuid": str(row["uuid"]),
        "hostname": str(row["hostname"]),
        "display_name": str(row.get("display_name") or row["hostname"]),
        **{k: row.get(k) for k in keys},
        **_stamps(row),
    }


def _plan_instances(
    rows: Sequence[Mapping[str, Any]], plan: ImportPlan
) -> None:
    wanted = {v["instance_uuid"] for v in plan.rows["virtual_interfaces"]}
    wanted |= {f["instance_uuid"] for f in plan.rows["fixed_ips"]}
    for row in rows:
        if row.get("uuid") in wanted:
            plan.rows["instances"].append(_instance_row(row))
        elif row.get("deleted"):
            plan.skip("instances", DELETED)
        else:
            plan.skip("instances", "no interface on an imported network")
    pairs = [
        (f["instance_uuid"], f["address"])
        for f in plan.rows["fixed_ips"]
        if f["allocated"] and f["instance_uuid"]
    ]
    plan.renamed = nova_names.rename_duplicates(plan.rows["instances"], pairs)
    for _ in plan.renamed:
        plan.adjust("instances", "hostname shared with a live instance of "
                    "lower id: renamed <hostname>-<nova id>")  # fmt: skip


def _drop_dangling(plan: ImportPlan) -> None:
    """References to rows nova does not have (no foreign keys there)."""
    instances = {i["uuid"] for i in plan.rows["instances"]}
    vifs = []
    for vif in plan.rows["virtual_interfaces"]:
        if vif["instance_uuid"] in instances:
            vifs.append(vif)
        else:
            plan.skip("virtual_interfaces", "instance row missing in nova")
    plan.rows["virtual_interfaces"] = vifs
    vif_ids = {v["id"] for v in vifs}
    for fixed in plan.rows["fixed_ips"]:
        vif = fixed["virtual_interface_id"]
        if vif is not None and vif not in vif_ids:
            fixed["virtual_interface_id"] = None
            plan.adjust("fixed_ips", "virtual_interface_id cleared: VIF "
                        "row missing in nova")  # fmt: skip
        owner = fixed["instance_uuid"]
        if owner is not None and owner not in instances:
            fixed["instance_uuid"] = None
            plan.adjust("fixed_ips", "instance_uuid cleared: instance row "
                        "missing in nova")  # fmt: skip


# --- floating IPs ---------------------------------------------------------
def _floating_row(row: Mapping[str, Any], plan: ImportPlan) -> Row:
    t = "floating_ips"
    pool = row.get("pool")
    if not pool:
        pool = "nova"
        plan.adjust(t, "pool was empty: nova's default_floating_pool 'nova'")
    return {
        "id": int(row["id"]),
        "address": nova_values.ip_text(row["address"], t, row),
        "fixed_ip_id": row.get("fixed_ip_id"),
        "project_id": row.get("project_id"),
        "host": row.get("host"),
        "auto_assigned": bool(row.get("auto_assigned")),
        "pool": pool,
        "interface": row.get("interface"),
        **_stamps(row),
    }


def _plan_floating(
    rows: Sequence[Mapping[str, Any]],
    nova_fixed: Sequence[Mapping[str, Any]],
    plan: ImportPlan,
) -> None:
    t = "floating_ips"
    imported = {f["id"] for f in plan.rows["fixed_ips"]}
    live = {f["id"] for f in nova_fixed if not f.get("deleted")}
    for row in rows:
        fixed_id = row.get("fixed_ip_id")
        if row.get("deleted"):
            plan.skip(t, DELETED)
        elif fixed_id is not None and fixed_id in live - imported:
            plan.skip(t, "associated with a fixed IP that is not imported")
        else:
            values = _floating_row(row, plan)
            if fixed_id is not None and fixed_id not in imported:
                values.update(fixed_ip_id=None, host=None)
                plan.adjust(t, "association with a deleted fixed IP dropped")
            plan.rows[t].append(values)


# --- tables flatnet does not import ---------------------------------------
def _plan_unused(counted: Mapping[str, int], plan: ImportPlan) -> None:
    if counted.get("security_group_default_rules"):
        plan.skip("security_group_default_rules",
                  nova_secgroups.DEFAULT_RULES,
                  counted["security_group_default_rules"])  # fmt: skip
    for name in ("provider_fw_rules", "dns_domains"):
        if counted.get(name):
            plan.skip(name, NOT_USED, counted[name])


_Planner = Callable[[Rows, Mapping[str, int], ImportPlan], None]
_PLANNERS: tuple[_Planner, ...] = (
    lambda r, c, p: _plan_networks(r["networks"], p),
    lambda r, c, p: _plan_fixed(r["fixed_ips"], p),
    lambda r, c, p: _plan_vifs(r["virtual_interfaces"], p),
    lambda r, c, p: _plan_instances(r["instances"], p),
    lambda r, c, p: _drop_dangling(p),
    lambda r, c, p: _plan_floating(r["floating_ips"], r["fixed_ips"], p),
    lambda r, c, p: nova_secgroups.plan_security_groups(r, p),
    lambda r, c, p: _plan_unused(c, p),
)


def plan_import(
    rows: Rows, counted: Mapping[str, int], version: int
) -> ImportPlan:
    """flatnet's rows for nova's ``rows`` (see the module docstring).

    ``counted``: live-row counts of nova tables flatnet does not import.
    Raises InvalidInput or Conflict; nothing is half-planned.
    """
    plan = ImportPlan(version=version)
    for planner in _PLANNERS:
        planner(rows, counted, plan)
    return plan
