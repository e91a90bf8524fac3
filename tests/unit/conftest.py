"""Unit-test fixtures."""

from __future__ import annotations

import pytest

from tests.unit.cli_harness import Cli


@pytest.fixture
def cli(tmp_path, capsys) -> Cli:
    c = Cli(tmp_path, capsys)
    c.ok("db", "sync")
    c.ok(
        "network",
        "create",
        "--label",
        "private",
        "--fixed-range-v4",
        "10.0.0.0/24",
        "--bridge",
        "br100",
        "--bridge-interface",
        "eth2",
        "--dns1",
        "8.8.4.4",
    )
    return c
