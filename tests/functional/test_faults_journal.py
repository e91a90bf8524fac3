"""Lease events on a full filesystem (root only).

networks_path is a tiny tmpfs (256 KiB); the real flatnet-network,
dnsmasq, sh hook and busybox udhcpc clients. Phase 1: the filesystem is
full but the journal's reserve takes the events. Phase 2: the reserve is
gone too, the ``add`` events of new clients are lost (counted by the
hook); once space is back the daemon replays dnsmasq's leases and every
client's address is leased in the database. Figures are printed (-s).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import time
from collections.abc import Iterator

import pytest

from flatnet.db import api as db_api
from flatnet.linux import journal
from tests.functional.dhcp_site import Site, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

MACS = [f"fa:16:3e:00:08:{n:02x}" for n in range(1, 6)]


@pytest.fixture
def tiny_networks(world_readable_dir) -> Iterator[pathlib.Path]:
    path = world_readable_dir / "networks"
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "fnt", path],
        check=True,
    )
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(path: pathlib.Path, data: bytes = b"x") -> None:
    """Append ``data`` to ``path`` until the filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (data * 4096, data):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, chunk)
    finally:
        os.close(fd)


def _spare(events: pathlib.Path) -> int:
    info = events.stat()
    return info.st_blocks * 512 - info.st_size


def _leased(site: Site) -> set[str]:
    db = db_api.Database(f"sqlite:///{site.tmp}/flatnet.sqlite")
    return {str(x.address) for x in db_api.leases(db, 1)}


def _drop_reserve(events: pathlib.Path, filler: pathlib.Path) -> None:
    """Free the journal's preallocation and give it to ``filler``, then
    pad the journal's last page with empty lines (skipped by the
    reader); the daemon may take the space back first: retry."""
    for _ in range(20):
        size = events.stat().st_size
        os.truncate(events, size + 1)
        os.truncate(events, size)  # drops the blocks past the end
        _fill(filler)
        _fill(events, b"\n")
        if _spare(events) == 0:
            return
    raise AssertionError("could not take the journal's reserve away")


def test_events_lost_on_a_full_disk_are_recovered(
    tiny_networks, make_dhcp_site
):
    site = make_dhcp_site()
    site.start_daemon()
    addresses = [site.create(f"vm{n}", mac) for n, mac in enumerate(MACS)]
    wanted = [x["interfaces"][0]["address"] for x in addresses]
    events = site.np / "nova-br100.events"
    lost_file = pathlib.Path(journal.loss_path(str(events)))
    wait_for(lambda: events.exists() and _spare(events) > 0, 5, "reserve")
    assert events.stat().st_mode & 0o777 == 0o600
    assert lost_file.stat().st_mode & 0o777 == 0o600
    filler = site.np / "filler"
    _fill(filler)
    # phase 1: full, the reserve takes the event
    site.client(site.plug(MACS[0])).bound()
    wait_for(lambda: _leased(site) == {wanted[0]}, 10, "vm0 leased")
    assert journal.read_losses(str(lost_file)).lost == 0
    # phase 2: no reserve either: lost, and counted
    _drop_reserve(events, filler)
    for mac in MACS[1:]:
        site.client(site.plug(mac)).bound()
    wait_for(
        lambda: journal.read_losses(str(lost_file)).lost >= len(MACS) - 1,
        10,
        "the hooks counted the lost events",
    )
    lost = journal.read_losses(str(lost_file)).lost
    time.sleep(0.5)  # the daemon runs on: nothing comes back by itself
    assert _leased(site) == {wanted[0]}
    freed = time.monotonic()
    filler.unlink()
    wait_for(lambda: _leased(site) == set(wanted), 20, "all recovered")
    took = time.monotonic() - freed
    losses = journal.read_losses(str(lost_file))
    assert losses.recovered == losses.lost == lost
    log = site.daemon_log.read_text()
    assert f"could not be written ({lost} lost in total" in log
    assert "replaying its leases" in log
    chunk = journal.read_chunk(str(events), 0)
    assert chunk is not None
    torn = [x for x in chunk.lines if x.startswith(journal.TORN)]
    print(
        f"\nfull tmpfs: {len(MACS) - 1} new clients, {lost} add events "
        f"lost and counted, all recovered {took:.2f} s after space came "
        f"back; torn records: {len(torn)}"
    )
