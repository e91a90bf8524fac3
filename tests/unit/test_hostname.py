"""flatnet.hostname: only RFC 1123 labels become instance host names."""

from __future__ import annotations

import pytest

from flatnet import exception, hostname


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vm1", "vm1"),
        ("VM-1", "vm-1"),
        ("a", "a"),
        ("9", "9"),
        ("x" * 63, "x" * 63),
        ("web-01-a", "web-01-a"),
    ],
)
def test_valid_labels(name, expected) -> None:
    assert hostname.validate_hostname(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 64,
        "vm 1",
        "vm\n1",
        "vm1\n",
        "vm,1",
        "vm#1",
        "vm\t1",
        "vm.example",
        "vm_1",
        "-vm",
        "vm-",
        "vé",
        "вм",
        "vm\x00",
        "vm/1",
        "vm;rm",
        "'vm'",
    ],
)
def test_invalid_labels_are_rejected(name) -> None:
    with pytest.raises(exception.InvalidHostname) as info:
        hostname.validate_hostname(name)
    assert "\n" not in str(info.value).replace(repr(name), "")
