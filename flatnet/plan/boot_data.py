"""PURE: what an instance is booted with for the metadata service: user
data and one SSH public key, validated as nova's API validated them.

* User data: nova's API took it base64-encoded, at most 65535
  characters once encoded (``nova/api/openstack/compute/schemas/
  servers.py`` ``user_data`` maxLength 65535, ``nova/compute/api.py``
  ``MAX_USERDATA_SIZE``: "must be no larger than 65535 bytes once
  base64 encoded"), and stored that text in ``instances.user_data``.
  So raw user data is at most 49149 bytes; flatnet stores the same
  base64 text.
* Key name: nova's keypair name pattern ``^[a-zA-Z0-9 _-]+$``, 1-255
  characters (``nova/api/openstack/compute/schemas/keypairs.py``).
* Public key: one line ``<type> <base64 blob> [comment]`` of an OpenSSH
  public key type whose blob names the same type (sshd(8)
  AUTHORIZED_KEYS FILE FORMAT; RFC 4253 section 6.6).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re

from flatnet import exception

MAX_USER_DATA_B64 = 65535
MAX_USER_DATA_RAW = MAX_USER_DATA_B64 // 4 * 3  # 49149
MAX_PUBLIC_KEY = 16384
KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-dss",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_KEY_NAME = re.compile(r"[a-zA-Z0-9 _-]{1,255}")


@dataclasses.dataclass(frozen=True, slots=True)
class BootData:
    """Validated boot data: ``user_data`` is base64 text as stored."""

    user_data: str | None = None
    key_name: str | None = None
    key_data: str | None = None


def encode_user_data(raw: bytes) -> str:
    """Base64 text of ``raw``; InvalidInput when nova would refuse it."""
    encoded = base64.b64encode(raw).decode("ascii")
    if len(encoded) > MAX_USER_DATA_B64:
        raise exception.InvalidInput(
            reason=f"user data is {len(raw)} bytes: at most "
            f"{MAX_USER_DATA_B64} once base64 encoded "
            f"({MAX_USER_DATA_RAW} bytes raw)"
        )
    return encoded


def validate_key_name(name: str) -> str:
    if not _KEY_NAME.fullmatch(name) or name.strip() != name:
        raise exception.InvalidInput(
            reason=f"key name {name!r}: 1-255 letters, digits, spaces, "
            "'_' or '-' (nova's keypair names)"
        )
    return name


def _blob_type(blob: str) -> str:
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("its key is not base64") from exc
    size = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 + size:
        raise ValueError("its key is truncated")
    return raw[4 : 4 + size].decode("ascii", "replace")


def validate_public_key(text: str) -> str:
    """One OpenSSH public key line (a final newline is dropped)."""
    line = text[:-1] if text.endswith("\n") else text
    try:
        if not line or len(line) > MAX_PUBLIC_KEY:
            raise ValueError("it is empty or too long")
        if not line.isprintable():
            raise ValueError("it must be one line of printable text")
        kind, _, rest = line.partition(" ")
        blob = rest.split(" ", 1)[0]
        if kind not in KEY_TYPES:
            raise ValueError(f"unknown key type {kind[:40]!r}")
        if _blob_type(blob) != kind:
            raise ValueError(f"its key is not an {kind} key")
    except ValueError as exc:
        raise exception.InvalidInput(
            reason=f"not an OpenSSH public key: {exc}"
        ) from exc
    return line


def boot_data(
    user_data: bytes | None,
    key_name: str | None,
    public_key: str | None,
) -> BootData:
    """Validated BootData; a name without a key (or the reverse) is
    refused. Raises InvalidInput."""
    if (key_name is None) != (public_key is None):
        raise exception.InvalidInput(
            reason="a key name needs a public key, and a key its name"
        )
    return BootData(
        user_data=None if user_data is None else encode_user_data(user_data),
        key_name=None if key_name is None else validate_key_name(key_name),
        key_data=(
            None if public_key is None else validate_public_key(public_key)
        ),
    )
