"""The libvirt ``<interface type='bridge'>`` element of one VIF (pure).

What nova's libvirt driver put in a domain for a nova-network VIF
(nova ``virt/libvirt/vif.py LibvirtGenericVIFDriver.get_config_bridge``,
``virt/libvirt/config.py LibvirtConfigGuestInterface.format_dom``):

.. code-block:: xml

    <interface type='bridge'>
      <mac address='fa:16:3e:11:22:33'/>
      <model type='virtio'/>
      <source bridge='br100'/>
      <target dev='tap0f3c1b2a-9d'/>
      <filterref filter='nova-instance-instance-00000007-fa163e112233'>
        <parameter name='IP' value='10.0.0.5'/>
        <parameter name='DHCPSERVER' value='10.0.0.1'/>
        <parameter name='PROJNET' value='10.0.0.0'/>
        <parameter name='PROJMASK' value='255.255.255.0'/>
      </filterref>
    </interface>

Built with xml.etree only (never string formatting): every value is
validated first, and the element is escaped by the serializer.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

import netaddr

from flatnet import exception
from flatnet.plan import nwfilter

#: nova ``network/model.py NIC_NAME_LEN``: an interface name has at
#: most 14 characters (IFNAMSIZ 16 with the NUL and one spare)
NIC_NAME_LEN = 14
_BRIDGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_MODELS = frozenset({"virtio", "e1000", "rtl8139", "ne2k_pci", "pcnet"})


def tap_name(vif_uuid: str) -> str:
    """``tap`` + the VIF uuid's first 11 characters (14 in all)."""
    if not re.match(r"^[0-9a-fA-F-]{11,}$", vif_uuid):
        raise exception.InvalidInput(reason=f"VIF id {vif_uuid!r}")
    return ("tap" + vif_uuid)[:NIC_NAME_LEN]


@dataclasses.dataclass(frozen=True, slots=True)
class InterfaceSpec:
    """What the element needs; ``parameters`` are nwfilter (name,
    value) pairs in order (a name may repeat: a list)."""

    mac: netaddr.EUI
    bridge: str
    vif_id: str
    filter_name: str | None = None
    parameters: nwfilter.Pairs = ()
    model: str = "virtio"
    mtu: int | None = None

    def __post_init__(self) -> None:
        if not _BRIDGE_RE.match(self.bridge):
            raise exception.InvalidInput(reason=f"bridge {self.bridge!r}")
        if self.model not in _MODELS:
            raise exception.InvalidInput(reason=f"NIC model {self.model!r}")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise exception.InvalidInput(reason=f"MTU {self.mtu}")
        tap_name(self.vif_id)


def interface_element(spec: InterfaceSpec) -> ET.Element:
    """The ``<interface type='bridge'>`` element of ``spec``."""
    root = ET.Element("interface", type="bridge")
    mac = str(netaddr.EUI(spec.mac, dialect=netaddr.mac_unix_expanded))
    ET.SubElement(root, "mac", address=mac.lower())
    ET.SubElement(root, "model", type=spec.model)
    ET.SubElement(root, "source", bridge=spec.bridge)
    ET.SubElement(root, "target", dev=tap_name(spec.vif_id))
    if spec.mtu is not None:
        ET.SubElement(root, "mtu", size=str(spec.mtu))
    if spec.filter_name is not None:
        root.append(
            nwfilter.filterref_element(spec.filter_name, spec.parameters)
        )
    return root


def interface_xml(spec: InterfaceSpec) -> str:
    """``interface_element(spec)`` as text, for a domain's ``<devices>``."""
    return ET.tostring(interface_element(spec), encoding="unicode")
