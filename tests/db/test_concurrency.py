"""Concurrent allocation from separate processes: no duplicates, no loss.

8 processes x 200 allocations on one /20, started together; then every
instance must hold exactly one address and no address two instances.
"""

from __future__ import annotations

import collections
import pathlib
import subprocess
import sys

import pytest

from flatnet.db import api
from tests.db.conftest import make_network

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROCS = 8
PER_PROC = 200


@pytest.mark.slow
def test_parallel_processes_allocate_without_duplicates(db, db_url, tmp_path):
    net = make_network(db, "10.16.0.0/20")
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.db.alloc_worker",
                db_url,
                net.label,
                f"p{i}",
                str(PER_PROC),
                str(go),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCS)
    ]
    go.touch()
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.split() == [str(PER_PROC), "0"], err
    fixed = [f for f in api.fixed_ip_list(db) if f.allocated]
    owners = collections.Counter(f.instance_uuid for f in fixed)
    addresses = collections.Counter(f.address for f in fixed)
    instances = api.instance_list(db)
    assert len(instances) == PROCS * PER_PROC
    assert len(fixed) == PROCS * PER_PROC
    assert max(addresses.values()) == 1
    assert set(owners) == {i.uuid for i in instances}
    assert max(owners.values()) == 1
    assert api.network_generations(db)[net.id] == 1 + PROCS * PER_PROC
    # the oldest-first rule held: the lowest addresses were handed out
    assert (
        sorted(int(a) for a in addresses)[-1]
        == int(net.cidr.network) + 1 + PROCS * PER_PROC
    )
