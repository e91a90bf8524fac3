"""PURE: OpenStack's ``/openstack/<version>/`` files, as nova 16.0.0.

Source: ``nova/api/metadata/base.py`` (``OPENSTACK_VERSIONS``,
``RouteConfiguration.handle_path``, ``_handle_version``,
``_metadata_as_json``, ``_vendor_data``, ``_vendor_data2``,
``_network_data``) and ``nova/virt/netutils.py get_network_metadata``.
JSON is ``json.dumps`` with its default separators, as nova's
``jsonutils.dump_as_bytes``; key order is nova's insertion order.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flatnet.plan.metadata import InstanceMetadata, MetadataVif

FOLSOM = "2012-08-10"
GRIZZLY = "2013-04-04"
HAVANA = "2013-10-17"
LIBERTY = "2015-10-15"
NEWTON_ONE = "2016-06-30"
NEWTON_TWO = "2016-10-06"
OCATA = "2017-02-22"
OPENSTACK_VERSIONS: tuple[str, ...] = (
    FOLSOM,
    GRIZZLY,
    HAVANA,
    LIBERTY,
    NEWTON_ONE,
    NEWTON_TWO,
    OCATA,
)

META_DATA = "meta_data.json"
USER_DATA = "user_data"
PASSWORD = "password"  # noqa: S105 (a file name)
VENDOR_DATA = "vendor_data.json"
VENDOR_DATA2 = "vendor_data2.json"
NETWORK_DATA = "network_data.json"

ANY = "0.0.0.0"  # noqa: S104 (the default route, not a bind)

# (body, is_json): the server turns this into an Answer.
Found = tuple[bytes, bool]


def _since(required: str, version: str) -> bool:
    return OPENSTACK_VERSIONS.index(version) >= OPENSTACK_VERSIONS.index(
        required
    )


def _dump(data: object) -> bytes:
    return json.dumps(data).encode()


def meta_data(
    md: InstanceMetadata, version: str, random_seed: bytes
) -> dict[str, Any]:
    """nova ``_metadata_as_json`` (no files, no admin password: the
    metadata service never had them)."""
    data: dict[str, Any] = {"uuid": md.uuid}
    if md.meta:
        data["meta"] = dict(md.meta)
    if md.public_keys:
        data["public_keys"] = dict(md.public_keys)
        data["keys"] = [
            {"name": name, "type": "ssh", "data": key}
            for name, key in md.public_keys.items()
        ]
    data["hostname"] = md.fqdn
    data["name"] = md.display_name or md.hostname
    data["launch_index"] = md.launch_index
    data["availability_zone"] = md.availability_zone
    if _since(GRIZZLY, version):
        data["random_seed"] = base64.b64encode(random_seed).decode()
    if _since(LIBERTY, version):
        data["project_id"] = md.project_id
    if _since(NEWTON_ONE, version):
        data["devices"] = []
    return data


def _link(vif: MetadataVif, num: int) -> dict[str, Any]:
    return {
        "id": f"interface{num}",
        "vif_id": vif.vif_id,
        "type": "bridge",
        "mtu": vif.mtu,
        "ethernet_mac_address": vif.mac,
    }


def _network(vif: MetadataVif, num: int, link: str) -> dict[str, Any]:
    if vif.dhcp:
        return {
            "id": f"network{num}",
            "type": "ipv4_dhcp",
            "link": link,
            "network_id": vif.network_id,
        }
    routes = []
    if vif.gateway:
        routes.append({"network": ANY, "netmask": ANY, "gateway": vif.gateway})
    return {
        "id": f"network{num}",
        "type": "ipv4",
        "link": link,
        "ip_address": vif.address,
        "netmask": vif.netmask,
        "routes": routes,
        "network_id": vif.network_id,
        "services": [{"type": "dns", "address": d} for d in vif.dns],
    }


def network_data(md: InstanceMetadata) -> dict[str, Any]:
    """nova ``netutils.get_network_metadata`` for IPv4 VIFs; ``{}``
    without any (nova's ``_network_data`` for empty network info)."""
    if not md.vifs:
        return {}
    links, networks, services = [], [], []
    for num, vif in enumerate(md.vifs):
        link = _link(vif, num)
        links.append(link)
        networks.append(_network(vif, num, link["id"]))
        for dns in vif.dns:
            service = {"type": "dns", "address": dns}
            if service not in services:
                services.append(service)
    return {"links": links, "networks": networks, "services": services}


class OpenStackFiles:
    """The ``openstack/`` subtree of one instance."""

    def __init__(
        self, md: InstanceMetadata, vendor_data: Mapping[str, Any] | None
    ) -> None:
        self.md = md
        static = dict(vendor_data) if vendor_data is not None else None
        # nova with vendordata_providers = [] served the jsonfile driver's
        # data (or {}) as vendor_data.json and {} as vendor_data2.json;
        # with StaticJSON the same data under "static" in the latter.
        self._vendor = _dump(static or {})
        self._vendor2 = _dump({} if static is None else {"static": static})
        self._network = _dump(network_data(md))

    def get(self, tokens: list[str], random_seed: bytes) -> Found | None:
        """``tokens`` after ``openstack``: [] lists the versions."""
        if not tokens:
            return "\n".join([*OPENSTACK_VERSIONS, "latest"]).encode(), False
        version = (
            OPENSTACK_VERSIONS[-1] if tokens[0] == "latest" else tokens[0]
        )
        if version not in OPENSTACK_VERSIONS:
            return None
        if len(tokens) == 1:
            return "\n".join(self.listing(version)).encode(), False
        return self._file("/".join(tokens[1:]), version, random_seed)

    def listing(self, version: str) -> list[str]:
        """nova ``_handle_version``."""
        names = [META_DATA]
        if self.md.user_data is not None:
            names.append(USER_DATA)
        if _since(GRIZZLY, version):
            names.append(PASSWORD)
        if _since(HAVANA, version):
            names.append(VENDOR_DATA)
        if _since(LIBERTY, version):
            names.append(NETWORK_DATA)
        if _since(NEWTON_TWO, version):
            names.append(VENDOR_DATA2)
        return names

    def _file(self, name: str, version: str, seed: bytes) -> Found | None:
        if name == META_DATA:
            return _dump(meta_data(self.md, version, seed)), True
        if name == USER_DATA:
            ud = self.md.user_data
            return None if ud is None else (ud, False)
        if name == NETWORK_DATA:  # nova checked no version here
            return self._network, False
        # name -> (first version serving it, body, is_json)
        gated = {
            PASSWORD: (GRIZZLY, b"", False),  # no password was ever posted
            VENDOR_DATA: (HAVANA, self._vendor, True),
            VENDOR_DATA2: (NEWTON_TWO, self._vendor2, True),
        }
        if name not in gated or not _since(gated[name][0], version):
            return None
        return gated[name][1], gated[name][2]
