"""Network info in nova's shape, from flatnet's allocation (pure).

nova ``network/manager.py NetworkManager.get_instance_nw_info`` and
``network/model.py`` (``VIF``, ``Network``, ``Subnet``, ``IP``): one
dict per VIF, as nova's model (dict subclasses) would serialise. A
compute driver reads ``address``, ``network['bridge']``, the subnet's
``cidr``, ``gateway``, ``dns``, ``ips`` and ``meta['dhcp_server']``.

flatnet adds, where nova-network left them empty:

* ``devname``: the tap name (``tap`` + the VIF uuid's first 11
  characters; nova-network returned None and the driver chose);
* ``meta['nwfilter']``: the instance filter's name, as the compute
  role defines it (``nova-instance-<instance name>-<mac>``), and
  ``meta['nwfilter_parameters']``: its parameters (IP, DHCPSERVER,
  PROJNET, PROJMASK) as [name, value] pairs;
* ``meta['instance_name']``: the libvirt domain name the filter name
  is built from (nova's default ``instance_name_template``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import netaddr

from flatnet import model
from flatnet.plan import libvirt_interface, nwfilter

#: nova's default ``instance_name_template``
INSTANCE_NAME = "instance-{:08x}"

VifDict = dict[str, Any]


def instance_name(instance: model.Instance) -> str:
    """The libvirt domain name (``instance-%08x`` of the integer id)."""
    return INSTANCE_NAME.format(instance.id)


def dhcp_server(network: model.Network) -> netaddr.IPAddress | None:
    """Where the guest's DHCP answers come from: the network's
    dhcp_server, else its gateway (nova ``_get_dhcp_ip``); None
    without DHCP."""
    if not network.enable_dhcp:
        return None
    return network.dhcp_server or network.gateway


def filter_spec(info: model.NetworkInfo) -> nwfilter.NicFilterSpec:
    """The nwfilter spec of the VIF, as the compute role builds it."""
    return nwfilter.NicFilterSpec(
        instance_name(info.instance),
        info.vif.address,
        (info.address,),
        dhcp_server(info.network),
        info.network.cidr,
    )


def _ip(address: object, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "address": str(address),
        "type": kind,
        "version": 4,
        "meta": {},
        **extra,
    }


def _subnet(info: model.NetworkInfo) -> dict[str, Any]:
    net = info.network
    server = dhcp_server(net)
    return {
        "cidr": str(net.cidr),
        "version": 4,
        "routes": [],
        "gateway": None
        if net.gateway is None
        else _ip(net.gateway, "gateway"),
        "dns": [_ip(d, "dns") for d in (net.dns1, net.dns2) if d is not None],
        "ips": [
            _ip(
                info.address,
                "fixed",
                floating_ips=[
                    _ip(f, "floating") for f in info.floating_addresses
                ],
            )
        ],
        "meta": {"dhcp_server": None if server is None else str(server)},
    }


def _network(info: model.NetworkInfo) -> dict[str, Any]:
    net = info.network
    meta: dict[str, Any] = {
        "tenant_id": net.project_id,
        "should_create_bridge": True,
    }
    if net.bridge_interface:
        meta["bridge_interface"] = net.bridge_interface
    if net.multi_host:
        meta["multi_host"] = True
    if net.mtu is not None:
        meta["mtu"] = net.mtu
    return {
        "id": net.uuid,
        "bridge": net.bridge,
        "label": net.label,
        "meta": meta,
        "subnets": [_subnet(info)],
    }


def vif_dict(info: model.NetworkInfo) -> VifDict:
    """One VIF in nova's network-model shape (plus flatnet's meta)."""
    spec = filter_spec(info)
    return {
        "id": info.vif.uuid,
        "address": str(
            netaddr.EUI(info.vif.address, dialect=netaddr.mac_unix_expanded)
        ).lower(),
        "type": "bridge",
        "details": {},
        "devname": libvirt_interface.tap_name(info.vif.uuid),
        "ovs_interfaceid": None,
        "qbh_params": None,
        "qbg_params": None,
        "active": True,
        "vnic_type": "normal",
        "profile": None,
        "preserve_on_delete": False,
        "meta": {
            "instance_name": spec.instance_name,
            "nwfilter": nwfilter.instance_filter_name(
                spec.instance_name, spec.mac
            ),
            "nwfilter_parameters": [
                list(p) for p in nwfilter.instance_parameters(spec)
            ],
        },
        "network": _network(info),
    }


def network_info(infos: Sequence[model.NetworkInfo]) -> list[VifDict]:
    """nova's NetworkInfo: one dict per VIF, in VIF order."""
    return [vif_dict(i) for i in infos]


def interface_spec(
    vif: VifDict, model_type: str = "virtio"
) -> libvirt_interface.InterfaceSpec:
    """The ``<interface>`` spec of a VIF dict (from :func:`vif_dict`)."""
    meta = vif.get("meta", {})
    network = vif["network"]
    return libvirt_interface.InterfaceSpec(
        mac=netaddr.EUI(vif["address"]),
        bridge=network["bridge"],
        vif_id=vif["id"],
        filter_name=meta.get("nwfilter"),
        parameters=tuple(
            (str(k), str(v)) for k, v in meta.get("nwfilter_parameters", ())
        ),
        model=model_type,
        mtu=network.get("meta", {}).get("mtu"),
    )
