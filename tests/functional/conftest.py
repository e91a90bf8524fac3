"""Fixtures for functional tests: per-test network namespaces."""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterator

import pytest

from tests.functional import netns
from tests.functional.dhcp_site import Site


@pytest.fixture
def make_netns() -> Iterator[Callable[[str], str]]:
    """Factory: ``make_netns("host")`` returns a new namespace name; all
    are removed (with their processes) at the end of the test."""
    created: list[str] = []

    def factory(kind: str = "ns") -> str:
        name = netns.unique_name(kind)
        netns.create(name)
        created.append(name)
        return name

    yield factory
    for name in reversed(created):
        netns.delete(name)


@pytest.fixture
def world_readable_dir() -> Iterator[pathlib.Path]:
    """A fresh 0755 directory: dnsmasq drops to 'nobody' and must read
    the files under it, which pytest's 0700 tmp_path does not allow."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="fntdhcp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_dhcp_site(
    make_netns: Callable[[str], str], world_readable_dir: pathlib.Path
) -> Iterator[Callable[..., Site]]:
    """Factory for a DHCP test site (network host namespace with a real
    flatnet-network, dnsmasq and a flat network); its dnsmasq logs to
    ``<dir>/dnsmasq.log``. Everything is killed afterwards."""
    made: list[Site] = []

    def factory(**options: object) -> Site:
        log_conf = world_readable_dir / "dnsmasq-extra.conf"
        log_conf.write_text(f"log-facility={world_readable_dir}/dnsmasq.log\n")
        site = Site(
            make_netns,
            world_readable_dir,
            dnsmasq_config_file=str(log_conf),
            **options,
        )
        made.append(site)
        return site

    yield factory
    for site in made:
        site.close()
        site.kill_dnsmasqs()
