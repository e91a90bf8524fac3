"""instance create --user-data/--key-name/--public-key: validated as
nova's API did, stored base64 in the instances row with the allocation;
bad input is one line, exit 2, nothing written (plan/boot_data.py)."""

from __future__ import annotations

import base64
import sqlite3

import pytest

from flatnet import exception
from flatnet.plan import boot_data

ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGH1lPc2vl9t3BzIZm9YNEZ18iNecJ0"
    "Ei6zBm4rt83r4 me@example"
)


def test_user_data_limit_is_novas_65535_base64_characters() -> None:
    ok = boot_data.encode_user_data(b"x" * 49149)
    assert len(ok) == 65532
    assert base64.b64decode(ok) == b"x" * 49149
    with pytest.raises(exception.InvalidInput, match="65535"):
        boot_data.encode_user_data(b"x" * 49150)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        (ED25519 + "\nssh-rsa AAAA", "one line"),
        ("ssh-foo " + ED25519.split()[1], "unknown key type"),
        ("ssh-rsa " + ED25519.split()[1], "not an ssh-rsa key"),
        ("ssh-ed25519 !!!notbase64", "not base64"),
        ("ssh-ed25519 AAAAC3", "not base64"),
        ("ssh-ed25519 AAAAC3Nz", "truncated"),
    ],
)
def test_bad_public_keys_are_refused(text: str, why: str) -> None:
    with pytest.raises(exception.InvalidInput, match=why):
        boot_data.validate_public_key(text)


def test_a_key_file_with_its_newline_is_one_line() -> None:
    assert boot_data.validate_public_key(ED25519 + "\n") == ED25519


@pytest.mark.parametrize("name", ["", "a=b", "a/b", " a", "x" * 256, "é"])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(exception.InvalidInput):
        boot_data.validate_key_name(name)


def test_name_and_key_go_together() -> None:
    with pytest.raises(exception.InvalidInput):
        boot_data.boot_data(None, "k", None)
    with pytest.raises(exception.InvalidInput):
        boot_data.boot_data(None, None, ED25519)


def _row(cli, name: str) -> tuple[str | None, ...]:
    with sqlite3.connect(cli.state / "flatnet.sqlite") as conn:
        return conn.execute(
            "SELECT user_data, key_name, key_data FROM instances "
            "WHERE hostname = ?",
            (name,),
        ).fetchone()


def test_instance_create_stores_user_data_and_key(cli, tmp_path) -> None:
    (tmp_path / "ud").write_bytes(b"#cloud-config\n\x00\xff")
    (tmp_path / "key.pub").write_text(ED25519 + "\n")
    cli.ok(
        "instance", "create", "vm1", "--user-data", str(tmp_path / "ud"),
        "--key-name", "my key", "--public-key", str(tmp_path / "key.pub"),
    )  # fmt: skip
    user_data, key_name, key_data = _row(cli, "vm1")
    assert base64.b64decode(user_data) == b"#cloud-config\n\x00\xff"
    assert (key_name, key_data) == ("my key", ED25519)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--user-data", "{d}/missing"], "No such file"),
        (["--user-data", "{d}/big"], "larger than 49149 bytes"),
        (["--key-name", "k"], "a key name needs a public key"),
        (["--key-name", "k", "--public-key", "{d}/big"], "larger than"),
        (["--key-name", "k", "--public-key", "{d}/latin1"], "not UTF-8"),
        (["--key-name", "a=b", "--public-key", "{d}/key.pub"], "key name"),
        (["--key-name", "k", "--public-key", "{d}/two"], "one line"),
    ],
)
def test_bad_boot_data_is_exit_2_and_nothing_changes(
    cli, tmp_path, extra: list[str], why: str
) -> None:
    (tmp_path / "big").write_bytes(b"x" * 49150)
    (tmp_path / "latin1").write_bytes(b"ssh-ed25519 \xe9")
    (tmp_path / "key.pub").write_text(ED25519)
    (tmp_path / "two").write_text(ED25519 + "\n" + ED25519 + "\n")
    before = cli.dump()
    argv = [a.format(d=tmp_path) for a in extra]
    rc, _, err = cli("instance", "create", "vm1", *argv)
    assert rc == 2
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert why in err
    assert cli.dump() == before
