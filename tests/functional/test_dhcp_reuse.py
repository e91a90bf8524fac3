"""An address is never handed to a new MAC while the old client can still
renew it, and it is reused once the old lease is released (nova
manager.deallocate_fixed_ip and the fixed IP state machine; real daemon,
dnsmasq and udhcpc)."""

from __future__ import annotations

import pytest

from flatnet.db import api as db_api
from tests.functional.dhcp_site import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

MACS = [f"fa:16:3e:00:02:0{n}" for n in range(1, 7)]


def test_address_reused_only_after_release(make_dhcp_site) -> None:
    # /29: .2 to .6 are the only five allocatable addresses
    site = make_dhcp_site(cidr="10.232.0.0/29")
    db = db_api.Database(f"sqlite:///{site.tmp}/flatnet.sqlite")
    site.start_daemon()
    made = [site.create(f"vm{n}", MACS[n - 1]) for n in range(1, 6)]
    address = made[0]["interfaces"][0]["address"]
    old = site.client(site.plug(MACS[0]))
    assert old.bound()["ip"] == address
    wait_for(lambda: {str(x.address) for x in db_api.leases(db, 1)}
             >= {address}, 5, "vm1's lease recorded")  # fmt: skip

    # The network host is down: nothing can release vm1's lease yet.
    site.stop_daemon()
    site.manage("instance", "delete", "vm1")
    full = site.manage("instance", "create", "vm6", "--network", "private",
                       check=False)  # fmt: skip
    assert full.returncode == 2
    assert "No fixed IP addresses available" in full.stderr
    assert old.renew() == "renew"  # the old client still holds it

    # The host comes back: entry removed, lease released, address free.
    site.start_daemon()

    def released() -> bool:
        row = next(r for r in db_api.fixed_ip_list(db)
                   if str(r.address) == address)  # fmt: skip
        return row.instance_uuid is None and not row.leased

    wait_for(released, 10, "vm1's address released and disassociated")
    assert old.renew() == "nak"
    again = site.create("vm6", MACS[5])["interfaces"][0]["address"]
    assert again == address
    assert site.client(site.plug(MACS[5])).bound()["ip"] == address
    db.dispose()
