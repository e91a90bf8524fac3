"""A full disk under the database: the error names the directory, exit 1,
and the database is unchanged (a tiny tmpfs the test mounts)."""

from __future__ import annotations

import pytest

from flatnet.cmd import manage
from tests import tmpfs


@pytest.fixture
def tiny(tmp_path):
    with tmpfs.mounted(tmp_path / "tiny", "1m") as mount:
        yield mount


@pytest.mark.root
def test_full_disk_names_the_directory_and_changes_nothing(
    tiny, tmp_path, capsys
) -> None:
    conf = tmp_path / "flatnet.conf"
    conf.write_text(
        f"[DEFAULT]\nstate_path = {tiny}/state\nflat_network_bridge = br100\n"
    )
    argv = ["--config-file", str(conf)]
    assert manage.main([*argv, "db", "sync"]) == 0
    capsys.readouterr()
    rc = manage.main(
        [*argv, "network", "create", "--label", "big",
         "--fixed-range-v4", "10.0.0.0/16"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1
    assert err == (
        f"error: no space left for database {tiny}/state/flatnet.sqlite on "
        f"{tiny}/state ([database] connection: the default, not set in "
        f"{conf})\n"
    )
    assert manage.main([*argv, "network", "list"]) == 0
    assert capsys.readouterr().out == "No networks found\n"
