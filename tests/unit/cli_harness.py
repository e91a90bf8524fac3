"""flatnet-manage run in-process against a temporary SQLite database."""

from __future__ import annotations

import json
import sqlite3

from flatnet.cmd import manage


class Cli:
    def __init__(self, tmp_path, capsys) -> None:
        self.state = tmp_path / "state"
        self.conf = tmp_path / "flatnet.conf"
        self.conf.write_text(
            f"[DEFAULT]\nstate_path = {self.state}\nhost = node1\n"
            "flat_network_bridge = br100\n"
        )
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = manage.main(["--config-file", str(self.conf), *argv])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def ok(self, *argv: str) -> str:
        rc, out, err = self(*argv)
        assert rc == 0, err
        return out

    def json(self, *argv: str):
        return json.loads(self.ok(*argv, "--format", "json"))

    def dump(self) -> list[str]:
        with sqlite3.connect(self.state / "flatnet.sqlite") as conn:
            return list(conn.iterdump())
