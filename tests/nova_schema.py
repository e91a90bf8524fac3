"""A nova 16.0.0 (Pike) database for tests.

The tables an import reads, with the columns, types and constraints of
``nova/db/sqlalchemy/models.py`` at tag 16.0.0 (classes Network, FixedIp,
VirtualInterface, FloatingIp, Instance, SecurityGroup,
SecurityGroupIngressRule, SecurityGroupInstanceAssociation,
SecurityGroupIngressDefaultRule, ProviderFirewallRule, DNSDomain), the
``NovaBase``/``SoftDeleteMixin`` columns of oslo.db, nova's custom types
(``nova/db/sqlalchemy/types.py``: INET on PostgreSQL, String(39)/(43)
elsewhere) and sqlalchemy-migrate's ``migrate_version`` table
(``nova/db/sqlalchemy/migrate_repo/migrate.cfg``: repository ``nova``;
the last migration of 16.0.0 is 362).

:func:`populate` fills it like a FlatDHCP cloud that ran for a while:
see :class:`NovaData`.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

import netaddr
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    insert,
)
from sqlalchemy.dialects import postgresql

PIKE_VERSION = 362
MIGRATE_REPO = "nova"


class IPAddress(TypeDecorator[Any]):
    """nova/db/sqlalchemy/types.py IPAddress."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.INET())
        return dialect.type_descriptor(String(39))


class CIDR(IPAddress):
    """nova/db/sqlalchemy/types.py CIDR (INET on PostgreSQL too)."""

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.INET())
        return dialect.type_descriptor(String(43))


def _base() -> list[Column[Any]]:
    """oslo.db TimestampMixin + nova's SoftDeleteMixin (deleted = id)."""
    return [
        Column("created_at", DateTime),
        Column("updated_at", DateTime),
        Column("deleted_at", DateTime),
        Column("deleted", Integer, default=0),
    ]


def _network_tables(meta: MetaData) -> None:
    Table(
        "networks", meta,
        *_base(),
        Column("id", Integer, primary_key=True, nullable=False),
        Column("label", String(255)),
        Column("injected", Boolean, default=False),
        Column("cidr", CIDR()), Column("cidr_v6", CIDR()),
        Column("multi_host", Boolean, default=False),
        Column("gateway_v6", IPAddress()), Column("netmask_v6", IPAddress()),
        Column("netmask", IPAddress()),
        Column("bridge", String(255)), Column("bridge_interface", String(255)),
        Column("gateway", IPAddress()), Column("broadcast", IPAddress()),
        Column("dns1", IPAddress()), Column("dns2", IPAddress()),
        Column("vlan", Integer),
        Column("vpn_public_address", IPAddress()),
        Column("vpn_public_port", Integer),
        Column("vpn_private_address", IPAddress()),
        Column("dhcp_start", IPAddress()),
        Column("rxtx_base", Integer),
        Column("project_id", String(255)), Column("priority", Integer),
        Column("host", String(255)), Column("uuid", String(36)),
        Column("mtu", Integer), Column("dhcp_server", IPAddress()),
        Column("enable_dhcp", Boolean, default=True),
        Column("share_address", Boolean, default=False),
        UniqueConstraint("vlan", "deleted", name="uniq_networks0vlan0deleted"),
        Index("networks_bridge_deleted_idx", "bridge", "deleted"),
        Index("networks_host_idx", "host"),
    )  # fmt: skip
    Table(
        "virtual_interfaces", meta,
        *_base(),
        Column("id", Integer, primary_key=True, nullable=False),
        Column("address", String(255)),
        Column("network_id", Integer),
        Column("instance_uuid", String(36), ForeignKey("instances.uuid")),
        Column("uuid", String(36)),
        Column("tag", String(255)),
        UniqueConstraint("address", "deleted",
                         name="uniq_virtual_interfaces0address0deleted"),
    )  # fmt: skip
    Table(
        "fixed_ips", meta,
        *_base(),
        Column("id", Integer, primary_key=True),
        Column("address", IPAddress()),
        Column("network_id", Integer),
        Column("virtual_interface_id", Integer),
        Column("instance_uuid", String(36), ForeignKey("instances.uuid")),
        Column("allocated", Boolean, default=False),
        Column("leased", Boolean, default=False),
        Column("reserved", Boolean, default=False),
        Column("host", String(255)),
        UniqueConstraint("address", "deleted",
                         name="uniq_fixed_ips0address0deleted"),
        Index("fixed_ips_deleted_allocated_updated_at_idx", "deleted",
              "allocated", "updated_at"),
    )  # fmt: skip
    Table(
        "floating_ips", meta,
        *_base(),
        Column("id", Integer, primary_key=True),
        Column("address", IPAddress()),
        Column("fixed_ip_id", Integer),
        Column("project_id", String(255)),
        Column("host", String(255)),
        Column("auto_assigned", Boolean, default=False),
        Column("pool", String(255)),
        Column("interface", String(255)),
        UniqueConstraint("address", "deleted",
                         name="uniq_floating_ips0address0deleted"),
    )  # fmt: skip


def _instances(meta: MetaData) -> None:
    """Every column of nova 16.0.0's Instance model."""
    s = String(255)
    Table(
        "instances", meta,
        *_base(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("user_id", s), Column("project_id", s),
        Column("image_ref", s), Column("kernel_id", s),
        Column("ramdisk_id", s), Column("hostname", s),
        Column("launch_index", Integer), Column("key_name", s),
        Column("key_data", Text), Column("power_state", Integer),
        Column("vm_state", s), Column("task_state", s),
        Column("memory_mb", Integer), Column("vcpus", Integer),
        Column("root_gb", Integer), Column("ephemeral_gb", Integer),
        Column("ephemeral_key_uuid", String(36)),
        Column("host", s), Column("node", s),
        Column("instance_type_id", Integer), Column("user_data", Text),
        Column("reservation_id", s),
        Column("launched_at", DateTime), Column("terminated_at", DateTime),
        Column("availability_zone", s), Column("display_name", s),
        Column("display_description", s), Column("launched_on", Text),
        Column("locked", Boolean),
        Column("locked_by",
               Enum("owner", "admin", name="instances0locked_by")),
        Column("os_type", s), Column("architecture", s), Column("vm_mode", s),
        Column("uuid", String(36), nullable=False),
        Column("root_device_name", s), Column("default_ephemeral_device", s),
        Column("default_swap_device", s), Column("config_drive", s),
        Column("access_ip_v4", IPAddress()),
        Column("access_ip_v6", IPAddress()),
        Column("auto_disk_config", Boolean), Column("progress", Integer),
        Column("shutdown_terminate", Boolean, default=False),
        Column("disable_terminate", Boolean, default=False),
        Column("cell_name", s), Column("cleaned", Integer, default=0),
        UniqueConstraint("uuid", name="uniq_instances0uuid"),
        Index("instances_host_deleted_cleaned_idx", "host", "deleted",
              "cleaned"),
    )  # fmt: skip


def _security_tables(meta: MetaData) -> None:
    s = String(255)
    Table(
        "security_groups", meta,
        *_base(),
        Column("id", Integer, primary_key=True),
        Column("name", s), Column("description", s),
        Column("user_id", s), Column("project_id", s),
        UniqueConstraint("project_id", "name", "deleted",
                         name="uniq_security_groups0project_id0name0deleted"),
    )  # fmt: skip
    Table(
        "security_group_instance_association", meta,
        *_base(),
        Column("id", Integer, primary_key=True, nullable=False),
        Column("security_group_id", Integer,
               ForeignKey("security_groups.id")),
        Column("instance_uuid", String(36), ForeignKey("instances.uuid")),
    )  # fmt: skip
    Table(
        "security_group_rules", meta,
        *_base(),
        Column("id", Integer, primary_key=True),
        Column("parent_group_id", Integer, ForeignKey("security_groups.id")),
        Column("protocol", s),
        Column("from_port", Integer), Column("to_port", Integer),
        Column("cidr", CIDR()),
        Column("group_id", Integer, ForeignKey("security_groups.id")),
    )  # fmt: skip
    for name in ("security_group_default_rules", "provider_fw_rules"):
        Table(
            name, meta,
            *_base(),
            Column("id", Integer, primary_key=True, nullable=False),
            Column("protocol", String(5)),
            Column("from_port", Integer), Column("to_port", Integer),
            Column("cidr", CIDR()),
        )  # fmt: skip
    Table(
        "dns_domains", meta,
        Column("created_at", DateTime), Column("updated_at", DateTime),
        Column("deleted_at", DateTime),
        Column("deleted", Boolean, default=False),
        Column("domain", s, primary_key=True),
        Column("scope", s), Column("availability_zone", s),
        Column("project_id", s),
    )  # fmt: skip


def nova_metadata() -> MetaData:
    meta = MetaData()
    _instances(meta)
    _network_tables(meta)
    _security_tables(meta)
    Table(
        "migrate_version", meta,
        Column("repository_id", String(250), primary_key=True),
        Column("repository_path", Text),
        Column("version", Integer),
    )  # fmt: skip
    return meta


def create_schema(engine: Engine, version: int = PIKE_VERSION) -> MetaData:
    """nova's tables plus its migrate_version row at ``version``."""
    meta = nova_metadata()
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(meta.tables["migrate_version"]).values(
                repository_id=MIGRATE_REPO,
                repository_path="/usr/lib/python2.7/dist-packages/nova/db/"
                "sqlalchemy/migrate_repo",
                version=version,
            )
        )
    return meta


# --- realistic data -------------------------------------------------------
EPOCH = datetime.datetime(2017, 9, 1, 12, 0, 0, 123456)


@dataclasses.dataclass(frozen=True)
class NovaData:
    """What :func:`populate` makes.

    * network 1 ``private`` (FlatDHCP, ``br100``, ``cidr``, host
      ``nethost``), its fixed_ips laid out as nova's
      ``_create_fixed_ips`` does (network, gateway=dhcp_server, broadcast
      reserved), plus one address reserved by an operator;
    * ``instances`` live instances (host ``compute-<n % 4>``), one VIF
      and one allocated fixed IP each, leased except every 7th;
    * an instance ``cirros`` whose second VIF is on a VLAN network
      (network 2, ``vlan 100``: skipped) and a soft-deleted network 3;
    * ``deleted`` soft-deleted instances with soft-deleted VIFs; the
      first one still holds a leased, deallocated address (allocated
      False, leased True, as after ``deallocate_fixed_ip`` before the
      DHCP release), the second left nova's stale-timeout residue (a
      disassociated address whose virtual_interface_id points at its
      deleted VIF);
    * floating IPs in pool ``public`` (172.24.4.0/28): the first
      ``floating`` associated with the first instances, one
      auto-assigned, one allocated to a project only, one soft-deleted;
    * a ``default`` security group per project with two rules (ssh from
      anywhere, everything from the group itself) and an association
      per live instance; a group ``web`` of project-1 (tcp 80-443 from
      10.1.0.0/16, icmp echo, udp 53 from members of project-1's
      default, an IPv6 rule) holding ``cirros``; a soft-deleted group
      ``old`` with its soft-deleted rule; one
      ``security_group_default_rules`` row.
    """

    instances: int = 10
    cidr: str = "10.0.0.0/24"
    deleted: int = 3
    floating: int = 3
    seed: int = 1


def _when(n: int) -> datetime.datetime:
    return EPOCH + datetime.timedelta(seconds=n)


def _nova_layout(cidr: str) -> tuple[netaddr.IPNetwork, list[dict[str, Any]]]:
    """fixed_ips rows as nova's _create_fixed_ips lays them out under
    FlatDHCPManager: .0 and .1 (gateway = dhcp_server) and the
    broadcast address reserved."""
    net = netaddr.IPNetwork(cidr)
    top = net.size - 1
    rows = [
        {"address": str(net[i]), "reserved": i < 2 or i == top}
        for i in range(net.size)
    ]
    return net, rows


class _Ids:
    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def __call__(self, table: str) -> int:
        self.next[table] = self.next.get(table, 0) + 1
        return self.next[table]


def _network(nid: int, cidr: str, label: str, **extra: Any) -> dict[str, Any]:
    net = netaddr.IPNetwork(cidr)
    values = {
        "id": nid, "label": label, "injected": False, "cidr": str(net),
        "cidr_v6": None, "multi_host": False, "netmask": str(net.netmask),
        "bridge": "br100", "bridge_interface": "eth1",
        "gateway": str(net[1]), "broadcast": str(net.broadcast),
        "dns1": "8.8.4.4", "dns2": None, "vlan": None,
        "dhcp_start": str(net[2]), "rxtx_base": None, "project_id": None,
        "priority": None, "host": "nethost",
        "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_OID, f"net{nid}")),
        "mtu": None, "dhcp_server": str(net[1]), "enable_dhcp": True,
        "share_address": False, "created_at": _when(0), "updated_at": None,
        "deleted_at": None, "deleted": 0,
    }  # fmt: skip
    values.update(extra)
    return values


class _Builder:
    """Accumulates rows; :func:`populate` inserts them in bulk."""

    def __init__(self, data: NovaData) -> None:
        self.data = data
        self.rng = random.Random(data.seed)
        self.ids = _Ids()
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.macs: set[str] = set()
        self.free: dict[int, list[dict[str, Any]]] = {}

    def add(self, table: str, **values: Any) -> dict[str, Any]:
        if "id" not in values:
            values["id"] = self.ids(table)
        values.setdefault("created_at", _when(values["id"]))
        values.setdefault("deleted", 0)
        self.rows.setdefault(table, []).append(values)
        return values

    def mac(self) -> str:
        while True:
            tail = self.rng.getrandbits(24)
            mac = f"fa:16:3e:{tail >> 16:02x}:{(tail >> 8) & 255:02x}:" + (
                f"{tail & 255:02x}"
            )
            if mac not in self.macs:
                self.macs.add(mac)
                return mac

    def network(self, nid: int, cidr: str, label: str, **extra: Any) -> None:
        self.rows.setdefault("networks", []).append(
            _network(nid, cidr, label, **extra)
        )
        deleted = extra.get("deleted", 0)
        _, layout = _nova_layout(cidr)
        free = []
        for row in layout:
            fixed = self.add(
                "fixed_ips", network_id=nid, virtual_interface_id=None,
                instance_uuid=None, allocated=False, leased=False,
                host=None, updated_at=None, **row,
            )  # fmt: skip
            if deleted:
                fixed["deleted"] = fixed["id"]
                fixed["deleted_at"] = _when(99)
            elif not row["reserved"]:
                free.append(fixed)
        self.free[nid] = free

    def instance(self, name: str, host: str, deleted: bool = False) -> str:
        n = self.ids.next.get("instances", 0) + 1
        uuid = str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))
        project = f"project-{n % 3}"
        self.add(
            "instances", uuid=uuid, hostname=name, display_name=name.upper(),
            host=host, node=f"{host}.example.org", launched_on=host,
            project_id=project, user_id="admin", vm_state="active",
            power_state=1, memory_mb=512, vcpus=1, root_gb=1,
            availability_zone="nova", image_ref=str(uuidlib.UUID(int=7)),
            launched_at=_when(n), cleaned=0,
            deleted=n if deleted else 0,
            deleted_at=_when(n + 50) if deleted else None,
        )  # fmt: skip
        return uuid

    def vif(self, instance_uuid: str, nid: int, deleted: bool = False) -> int:
        vid = self.ids("virtual_interfaces")
        self.add(
            "virtual_interfaces", id=vid, address=self.mac(),
            network_id=nid, instance_uuid=instance_uuid,
            uuid=str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4)),
            tag=None, deleted=vid if deleted else 0,
        )  # fmt: skip
        return vid

    def allocate(self, owner: str, nid: int, **flags: Any) -> int:
        fixed = self.free[nid].pop(0)
        vid = self.vif(owner, nid, deleted=flags.pop("vif_deleted", 0))
        fixed.update(
            instance_uuid=owner, virtual_interface_id=vid,
            allocated=True, leased=True, updated_at=_when(1000 + vid),
        )  # fmt: skip
        fixed.update(flags)
        return int(fixed["id"])


def _fill(b: _Builder) -> None:
    d = b.data
    b.network(1, d.cidr, "private")
    b.free[1][48]["reserved"] = True  # an operator's ``fixed reserve``
    b.free[1].pop(48)
    b.network(2, "10.100.0.0/28", "vlan100", vlan=100, bridge="br_vlan100",
              bridge_interface="eth2", project_id="project-1")  # fmt: skip
    b.network(3, "10.200.0.0/28", "old", bridge="br200", deleted=3,
              deleted_at=_when(90))  # fmt: skip
    fixed_of: list[int] = []
    cirros = b.instance("cirros", "compute-0")
    fixed_of.append(b.allocate(cirros, 1))
    b.allocate(cirros, 2)  # its VLAN interface: skipped
    for n in range(1, d.instances):
        uuid = b.instance(f"vm-{n}", f"compute-{n % 4}")
        fixed_of.append(b.allocate(uuid, 1, leased=n % 7 != 0))
    _deleted(b, d.deleted)
    _floating(b, fixed_of[: d.floating])
    _security(b)


def _deleted(b: _Builder, count: int) -> None:
    for n in range(count):
        uuid = b.instance(f"gone-{n}", "compute-1", deleted=True)
        if n == 0:  # deallocated, DHCP release not seen yet
            b.allocate(uuid, 1, allocated=False, vif_deleted=True)
        elif n == 1:  # nova's stale-timeout residue
            b.allocate(uuid, 1, allocated=False, leased=False,
                       instance_uuid=None, vif_deleted=True)  # fmt: skip
        else:
            b.vif(uuid, 1, deleted=True)


def _floating(b: _Builder, fixed_ids: list[int]) -> None:
    hosts = list(netaddr.IPNetwork("172.24.4.0/28").iter_hosts())
    for n, address in enumerate(hosts):
        values: dict[str, Any] = {
            "address": str(address), "fixed_ip_id": None,
            "project_id": None, "host": None, "auto_assigned": False,
            "pool": "public", "interface": "eth0",
        }  # fmt: skip
        if n < len(fixed_ids):
            values.update(fixed_ip_id=fixed_ids[n], project_id="project-1",
                          host="nethost", auto_assigned=n == 1)  # fmt: skip
        elif n == len(fixed_ids):
            values.update(project_id="project-2")
        elif n == len(fixed_ids) + 1:
            values.update(deleted=n + 1, deleted_at=_when(70))
        b.add("floating_ips", **values)


def _security(b: _Builder) -> None:
    groups = {}
    for p in range(3):
        row = b.add("security_groups", name="default",
                    description="default", user_id="admin",
                    project_id=f"project-{p}")  # fmt: skip
        groups[f"project-{p}"] = row["id"]
        b.add("security_group_rules", parent_group_id=row["id"],
              protocol="tcp", from_port=22, to_port=22, cidr="0.0.0.0/0",
              group_id=None)  # fmt: skip
        b.add("security_group_rules", parent_group_id=row["id"],
              protocol=None, from_port=None, to_port=None, cidr=None,
              group_id=row["id"])  # fmt: skip
    for inst in b.rows["instances"]:
        if not inst["deleted"]:
            b.add("security_group_instance_association",
                  security_group_id=groups[inst["project_id"]],
                  instance_uuid=inst["uuid"])  # fmt: skip
    _web_groups(b, groups["project-1"])


def _web_groups(b: _Builder, default_1: int) -> None:
    web = b.add("security_groups", name="web", description="web servers",
                user_id="admin", project_id="project-1")["id"]  # fmt: skip
    for proto, low, high, cidr, source in (
        ("tcp", 80, 443, "10.1.0.0/16", None),
        ("ICMP", 8, -1, "0.0.0.0/0", None),
        ("udp", 53, 53, None, default_1),
        ("tcp", 22, 22, "2001:db8::/64", None),
    ):
        b.add("security_group_rules", parent_group_id=web, protocol=proto,
              from_port=low, to_port=high, cidr=cidr,
              group_id=source)  # fmt: skip
    cirros = b.rows["instances"][0]["uuid"]
    b.add("security_group_instance_association", security_group_id=web,
          instance_uuid=cirros)  # fmt: skip
    gone = b.ids("security_groups")
    b.add("security_groups", id=gone, name="old", description="old",
          user_id="admin", project_id="project-2", deleted=gone,
          deleted_at=_when(80))  # fmt: skip
    rid = b.ids("security_group_rules")
    b.add("security_group_rules", id=rid, parent_group_id=gone,
          protocol="tcp", from_port=25, to_port=25, cidr="0.0.0.0/0",
          group_id=None, deleted=rid, deleted_at=_when(80))  # fmt: skip
    b.add("security_group_default_rules", protocol="tcp", from_port=22,
          to_port=22, cidr="0.0.0.0/0")  # fmt: skip


def _chunks(
    rows: list[dict[str, Any]], size: int = 2000
) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def populate(engine: Engine, data: NovaData | None = None) -> MetaData:
    """Create nova's schema in ``engine`` and fill it (see NovaData)."""
    data = data or NovaData()
    meta = create_schema(engine)
    builder = _Builder(data)
    _fill(builder)
    order = ("instances", "networks", "virtual_interfaces", "fixed_ips",
             "floating_ips", "security_groups", "security_group_rules",
             "security_group_instance_association",
             "security_group_default_rules")  # fmt: skip
    with engine.begin() as conn:
        for name in order:
            table = meta.tables[name]
            rows = builder.rows.get(name, [])
            columns = [c.name for c in table.columns]
            for chunk in _chunks(rows):
                full = [{c: r.get(c) for c in columns} for r in chunk]
                conn.execute(insert(table), full)
    return meta
