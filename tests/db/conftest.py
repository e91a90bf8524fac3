"""DB test fixtures: a fresh, migrated database per test.

``db`` runs each test on SQLite and, when FLATNET_TEST_PG_URL is set
(tools/pg-test-server.sh start), on a fresh PostgreSQL database too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import netaddr
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from flatnet import ipam, model
from flatnet.db import api

PG_URL = os.environ.get("FLATNET_TEST_PG_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards)."""
    if not PG_URL:
        pytest.skip("FLATNET_TEST_PG_URL is not set")
    name = f"flatnet_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield (
        make_url(PG_URL)
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/flatnet.sqlite"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_url) -> Iterator[api.Database]:
    database = api.Database(db_url)
    api.sync(database)
    yield database
    database.dispose()


def make_network(
    db: api.Database,
    cidr: str = "10.0.0.0/24",
    label: str = "private",
    bridge: str = "br100",
    **kwargs: object,
) -> model.Network:
    existing = [n.cidr for n in api.network_list(db)]
    layout = ipam.network_layout(cidr, existing=existing)
    return api.network_create(
        db,
        layout,
        label=label,
        bridge=bridge,
        dns1=netaddr.IPAddress("8.8.4.4"),
        **kwargs,
    )


def make_instance(
    db: api.Database,
    name: str,
    network: model.Network,
    mac: int,
    address: str | None = None,
    host: str | None = None,
) -> model.NetworkInfo:
    spec = api.InstanceSpec(hostname=name, display_name=name, host=host)
    req = api.VifRequest(
        network_id=network.id,
        mac=netaddr.EUI(0xFA163E000000 + mac),
        address=netaddr.IPAddress(address) if address else None,
    )
    return api.instance_create_allocated(db, spec, [req])[0]
