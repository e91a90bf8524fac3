"""etc/flatnet/flatnet.conf.sample is generated, never hand-edited:
this fails when an option changed and `make genconfig` was not run."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from flatnet import conf

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_sample_config_is_up_to_date(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "flatnet.conf.sample"
    gen = pathlib.Path(sys.executable).parent / "oslo-config-generator"
    subprocess.run(
        [
            str(gen),
            "--namespace",
            "flatnet",
            "--wrap-width",
            "79",
            "--output-file",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    committed = (ROOT / "etc/flatnet/flatnet.conf.sample").read_text()
    assert out.read_text() == committed, "run `make genconfig`"


def test_sample_config_loads(tmp_path: pathlib.Path) -> None:
    cfg = conf.parse(
        ["--config-file", str(ROOT / "etc/flatnet/flatnet.conf.sample")]
    )
    assert cfg.dhcp_lease_time == 86400
    assert cfg.dhcp_domain == "novalocal"
    assert cfg.metadata_port == 8775
