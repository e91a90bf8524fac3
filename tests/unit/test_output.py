"""flatnet.cmd.output: nova-style tables stay one row per line."""

from __future__ import annotations

import json

from flatnet.cmd import output


def test_table_pads_and_tabs_like_nova_manage() -> None:
    text = output.table(("id", "IPv4"), [(1, "10.0.0.0/24")], (5, 18))
    assert text == "id   \tIPv4\n1    \t10.0.0.0/24\n"


def test_unprintable_values_cannot_break_rows() -> None:
    text = output.table(("a", "b"), [("x\ny", "p\tq")])
    assert text.count("\n") == 2
    assert "x?y" in text
    assert "p?q" in text


def test_json_is_sorted_and_newline_terminated() -> None:
    assert json.loads(output.to_json({"b": 1, "a": None})) == {
        "a": None,
        "b": 1,
    }
    assert output.to_json([]) == "[]\n"


def test_empty_lists_use_nova_messages() -> None:
    assert output.networks_table([]) == "No networks found\n"
    assert output.fixed_table([]) == "No fixed IP found.\n"
