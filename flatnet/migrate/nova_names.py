"""PURE: live nova instances that share a host name.

nova never made ``instances.hostname`` unique (``nova/db/sqlalchemy/
models.py`` Instance has no such constraint; the API derives the name
from the display name, ``nova/compute/api.py _populate_instance_names``
/ ``utils.sanitize_hostname``), so two live instances can both be
``web``; nova-network then wrote two hosts-file lines with the same
name (``linux_net._host_dhcp``) and each guest got ``web`` in DHCP
option 12, while ``web.novalocal`` in dnsmasq's DNS could name only one
of them. flatnet keeps one live instance per host name
(``uniq_instances0hostname0deleted``: the name is the guest's DNS
identity), so the import renames deterministically:

* the live instance with the lowest nova id keeps the name;
* every other one becomes ``<name>-<nova id>`` (the name part cut so
  that the label stays within 63 characters), ``-2``, ``-3``... added
  in the unlikely case that this is itself taken.

Each rename is returned (:class:`Rename`) so the import summary can say
what the guest will see: its DHCP host name and FQDN change at its
next renewal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from flatnet.hostname import MAX_LABEL


@dataclasses.dataclass(frozen=True)
class Rename:
    """One live instance whose host name the import changed."""

    instance_uuid: str
    instance_id: int
    nova_hostname: str
    flatnet_hostname: str
    kept_by: str  # uuid of the instance that keeps the nova name
    addresses: tuple[str, ...] = ()


def _candidate(name: str, ident: int, attempt: int) -> str:
    suffix = f"-{ident}" + (f"-{attempt}" if attempt > 1 else "")
    head = name[: MAX_LABEL - len(suffix)].rstrip("-")
    return f"{head}{suffix}"


def rename_duplicates(
    instances: Sequence[MutableMapping[str, Any]],
    addresses: Iterable[tuple[str, str]] = (),
) -> list[Rename]:
    """Rename, in place, live ``instances`` rows (flatnet's instance
    rows) whose host name a live instance with a lower id already has.

    ``addresses``: (instance uuid, fixed IP) pairs, for the report.
    """
    ips: dict[str, list[str]] = {}
    for uuid, address in addresses:
        ips.setdefault(uuid, []).append(address)
    live = sorted((i for i in instances if not i["deleted"]),
                  key=lambda i: i["id"])  # fmt: skip
    taken = {i["hostname"].lower() for i in live}
    owner: dict[str, str] = {}
    renames = []
    for inst in live:
        name = inst["hostname"]
        if name.lower() not in owner:
            owner[name.lower()] = inst["uuid"]
            continue
        attempt = 1
        new = _candidate(name, inst["id"], attempt)
        while new.lower() in taken:
            attempt += 1
            new = _candidate(name, inst["id"], attempt)
        taken.add(new.lower())
        inst["hostname"] = new
        renames.append(Rename(
            instance_uuid=inst["uuid"], instance_id=inst["id"],
            nova_hostname=name, flatnet_hostname=new,
            kept_by=owner[name.lower()],
            addresses=tuple(sorted(ips.get(inst["uuid"], ()))),
        ))  # fmt: skip
    return renames
