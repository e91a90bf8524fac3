"""PURE: the tree nova's metadata service answered, rendered from data.

Source: ``nova/api/metadata/base.py`` (``InstanceMetadata``,
``get_ec2_metadata``, ``lookup``, ``ec2_md_print``, ``find_path_in_tree``,
``RouteConfiguration``) and ``nova/api/metadata/handler.py``
(``MetadataRequestHandler.__call__``) at nova 16.0.0; the facts used are
listed in doc/metadata.md.

``MetadataTree(md).get(path, random_seed)`` answers one request path
with an :class:`Answer` (body and content type) or ``None`` (404). The
path is normalised as nova did (``posixpath.normpath``: ``.``/``..``
and repeated or trailing slashes do not matter; a path that is neither
``ec2/...`` nor ``openstack/...`` is an EC2 path). ``random_seed``
(512 bytes in nova) is a parameter so that this module stays pure: the
server passes fresh random bytes per request, as nova did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from flatnet.plan import metadata_json

# nova/api/metadata/base.py VERSIONS; "latest" means the last one.
EC2_VERSIONS: tuple[str, ...] = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
)
LATEST = "latest"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"

# nova/block_device.py instance_block_mapping for a libvirt guest whose
# root_device_name is /dev/vda and which has no ephemeral, swap or volume.
LIBVIRT_BLOCK_DEVICE_MAPPING: Mapping[str, str] = {
    "ami": "vda",
    "root": "/dev/vda",
}

Node = Mapping[str, "Node"] | list[str] | str | bytes | int
Seed = bytes | Callable[[], bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class MetadataVif:
    """One virtual interface as network_data.json shows it.

    ``dhcp`` is True when the subnet has a DHCP server (always for
    FlatDHCP): nova then wrote only ``"type": "ipv4_dhcp"`` for it;
    otherwise a static ``ipv4`` network with address, netmask, default
    route and DNS (``nova/virt/netutils.py _get_nets``).
    """

    vif_id: str
    mac: str
    network_id: str
    address: str
    netmask: str
    gateway: str | None = None
    dns: tuple[str, ...] = ()
    dhcp: bool = True
    mtu: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceMetadata:
    """Everything the metadata service tells one instance.

    ``hostname`` is the short name; the served hostname is
    ``hostname.domain`` (``domain`` is nova's ``dhcp_domain``; empty
    means no suffix). ``public_keys`` maps key name to OpenSSH public
    key, in the order shown (nova had at most one). ``user_data`` is the
    decoded bytes, or None when the instance has none.
    """

    uuid: str
    ec2_id: str
    hostname: str
    fixed_ip: str
    reservation_id: str
    domain: str = "novalocal"
    display_name: str = ""
    floating_ip: str | None = None
    launch_index: int = 0
    availability_zone: str = "nova"
    security_groups: tuple[str, ...] = ("default",)
    public_keys: Mapping[str, str] = dataclasses.field(default_factory=dict)
    user_data: bytes | None = None
    meta: Mapping[str, str] = dataclasses.field(default_factory=dict)
    project_id: str = ""
    ami_id: str = ""
    instance_type: str = ""
    block_device_mapping: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: dict(LIBVIRT_BLOCK_DEVICE_MAPPING)
    )
    vifs: tuple[MetadataVif, ...] = ()

    @property
    def fqdn(self) -> str:
        """nova ``InstanceMetadata._get_hostname``."""
        dot = "." if self.domain else ""
        return f"{self.hostname}{dot}{self.domain}"

    @property
    def mac(self) -> str | None:
        """The first VIF's MAC (the one whose address is local-ipv4)."""
        return self.vifs[0].mac if self.vifs else None


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """One response: body bytes and its Content-Type."""

    body: bytes
    content_type: str = TEXT


def ec2_instance_id(instance_id: int) -> str:
    """nova ``ec2utils.id_to_ec2_id``: ``i-%08x`` of the integer id."""
    return f"i-{instance_id:08x}"


def block_device_mapping(
    root_device_name: str | None,
    ephemeral: str | None = None,
    swap: str | None = None,
) -> dict[str, str]:
    """nova ``block_device.instance_block_mapping`` without volumes."""
    if root_device_name is None:
        return {
            "ami": "sda1",
            "ephemeral0": "sda2",
            "root": "/dev/sda1",
            "swap": "sda3",
        }
    mappings = {
        "ami": root_device_name.removeprefix("/dev/"),
        "root": root_device_name,
    }
    if ephemeral:
        mappings["ephemeral0"] = ephemeral
    if swap:
        mappings["swap"] = swap
    return mappings


def normalize(path: str) -> list[str]:
    """The path's tokens after nova's ``posixpath.normpath``."""
    tokens: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if tokens:
                tokens.pop()
        else:
            tokens.append(part)
    return tokens


def render(node: Node) -> bytes:
    """nova ``ec2_md_print``: a listing for a dict, lines for a list."""
    if isinstance(node, Mapping):
        lines = []
        for key in sorted(node):
            if key == "_name":
                continue
            child = node[key]
            if isinstance(child, Mapping):
                lines.append(str(child.get("_name", key + "/")))
            else:
                lines.append(key)
        return "\n".join(lines).encode()
    if isinstance(node, list):
        return "\n".join(node).encode()
    if isinstance(node, bytes):
        return node
    return str(node).encode()


def ec2_listing() -> Answer:
    """``/``: the EC2 versions and ``latest``."""
    return Answer(render([*EC2_VERSIONS, LATEST]))


def _since(required: str, version: str) -> bool:
    return EC2_VERSIONS.index(version) >= EC2_VERSIONS.index(required)


def ec2_tree(md: InstanceMetadata, version: str) -> dict[str, Node]:
    """nova ``InstanceMetadata.get_ec2_metadata`` for one version."""
    meta: dict[str, Node] = {
        "ami-id": md.ami_id,
        "ami-launch-index": md.launch_index,
        "ami-manifest-path": "FIXME",
        "instance-id": md.ec2_id,
        "hostname": md.fqdn,
        "local-ipv4": md.fixed_ip,
        "reservation-id": md.reservation_id,
        "security-groups": list(md.security_groups),
    }
    if md.public_keys:
        meta["public-keys"] = {
            str(n): {"_name": f"{n}={name}", "openssh-key": key}
            for n, (name, key) in enumerate(md.public_keys.items())
        }
    if _since("2007-01-19", version):
        meta["local-hostname"] = md.fqdn
        meta["public-hostname"] = md.fqdn
        meta["public-ipv4"] = md.floating_ip or ""
    if _since("2007-08-29", version):
        meta["instance-type"] = md.instance_type
    if _since("2007-12-15", version):
        meta["block-device-mapping"] = dict(md.block_device_mapping)
    if _since("2008-02-01", version):
        meta["placement"] = {"availability-zone": md.availability_zone}
    if _since("2008-09-01", version):
        meta["instance-action"] = "none"
    data: dict[str, Node] = {"meta-data": meta}
    if md.user_data is not None:
        data["user-data"] = md.user_data
    return data


def find(node: Node, tokens: list[str]) -> Node | None:
    """nova ``find_path_in_tree``; a path below a leaf is not found
    (nova raised a TypeError there: a 500)."""
    for token in tokens:
        if not isinstance(node, Mapping) or token not in node:
            return None
        node = node[token]
    return node


class MetadataTree:
    """Every path one instance may read, built once per instance.

    ``vendor_data`` is the deployment's static vendor data (nova's
    ``vendordata_jsonfile_path`` content) or None when there is none.
    """

    def __init__(
        self,
        md: InstanceMetadata,
        vendor_data: Mapping[str, Any] | None = None,
    ) -> None:
        self.md = md
        self._ec2: dict[str, dict[str, Node]] = {}
        self._os = metadata_json.OpenStackFiles(md, vendor_data)
        # answers found so far, by normalised path (a finite set: paths
        # that are not found are not kept)
        self._answers: dict[str, Answer] = {}

    def get(self, path: str, random_seed: Seed = b"") -> Answer | None:
        """The answer for ``path`` (query string already removed).

        ``random_seed`` is bytes or a function returning them; it is
        only used (called) for meta_data.json, the one answer that
        changes from one request to the next.
        """
        tokens = normalize(path)
        key = "/".join(tokens)
        answer = self._answers.get(key)
        if answer is not None:
            return answer
        if tokens and tokens[0] == "openstack":
            seed = random_seed() if callable(random_seed) else random_seed
            found = self._os.get(tokens[1:], seed)
            if found is None:
                return None
            answer = Answer(found[0], JSON if found[1] else TEXT)
            if tokens[-1] == metadata_json.META_DATA:
                return answer
        else:
            answer = self._ec2_get(
                tokens[1:] if tokens[:1] == ["ec2"] else tokens
            )
            if answer is None:
                return None
        self._answers[key] = answer
        return answer

    def _ec2_get(self, tokens: list[str]) -> Answer | None:
        if not tokens:
            return ec2_listing()
        version = EC2_VERSIONS[-1] if tokens[0] == LATEST else tokens[0]
        if version not in EC2_VERSIONS:
            return None
        tree = self._ec2.get(version)
        if tree is None:
            tree = self._ec2[version] = ec2_tree(self.md, version)
        node = find(tree, tokens[1:])
        return None if node is None else Answer(render(node))
