"""Fuzz-style: many bad inputs, each exit 2, one line on stderr, and the
database file byte-identical afterwards."""

from __future__ import annotations

import itertools

import pytest

#: Characters that must never pass into a label, pool or host: C0, DEL,
#: C1 (\x85 NEL, \x9b CSI), format, line/paragraph separators, NBSP.
BAD_CHARS = [
    "\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u200b",
    "\u2028", "\u2029", "\u00a0", "\ufeff",
]  # fmt: skip

TEXT_FIELDS = [
    ("network", "create", "--fixed-range-v4", "10.9.0.0/24", "--label"),
    ("network", "create", "--label", "n", "--fixed-range-v4",
     "10.9.0.0/24", "--project-id"),
    ("floating", "create", "--ip-range", "192.0.2.9", "--pool"),
    ("instance", "create", "vmz", "--host"),
]  # fmt: skip

CASES: list[tuple[str, ...]] = [
    (*field, f"a{char}b")
    for field, char in itertools.product(TEXT_FIELDS, BAD_CHARS)
]
CASES += [
    ("network", "create", "--label", "x", "--fixed-range-v4", cidr)
    for cidr in ("0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/15", "10.1.0.0/33",
                 "10.1.0.1/24", "::/0", "10.1.0.0/24\n", "1e400", "")
]  # fmt: skip
CASES += [
    ("instance", "create", "vm1", "--wait", "--timeout", t)
    for t in ("nan", "inf", "-inf", "1e400", "0", "-1", "3601", "x")
]
CASES += [
    ("instance", "create", "vm1", "--mac", m)
    for m in ("fa:16:3e:aa-00-01", "fa-16-3e-aa:00:01", "fa:16:3e:aa:00",
              "fa:16:3e:aa:00:01:02", "fa:16:3e:aa:00:0g", "fa16.3eaa.0001",
              "fa:16:3e:aa:00:01\n", "\u0661\u0662:16:3e:aa:00:01")
]  # fmt: skip
CASES += [
    ("instance", "create", "vm1", "--network", n)
    for n in ("99999999999999999999", "-1", "0", "1" * 400, "\u0661")
]
CASES += [
    ("network", "delete", "99999999999999999999"),
    ("network", "create", "--label", "x", "--fixed-range-v4",
     "10.1.0.0/24", "--mtu", "99999999999999999999"),
    ("fixed", "reserve", "--address", "10.0.0.256"),
    ("fixed", "unreserve", "--address", "10.0.0.1"),  # the gateway
    ("fixed", "unreserve", "--address", "10.0.0.0"),  # network address
    ("fixed", "unreserve", "--address", "10.0.0.255"),  # broadcast
    ("fixed", "list", "--address", "10.0.0.0/33"),
    ("fixed", "list", "--network", "nosuch"),
    ("floating", "create", "--ip-range", "10.0.0.0/8"),
    ("floating", "delete", "--address", "192.0.2.200"),
    ("floating", "delete", "--address", "192.0.2.1", "--ip-range",
     "192.0.2.0/30"),
    ("floating", "delete"),
    ("instance", "show", "x" * 10000),
]  # fmt: skip


@pytest.mark.parametrize("argv", CASES, ids=lambda a: repr(a)[:70])
def test_bad_input_is_exit_2_one_line_and_the_file_unchanged(cli, argv):
    db = cli.state / "flatnet.sqlite"
    before = db.read_bytes()
    rc, out, err = cli(*argv)
    assert rc == 2, (argv, out, err)
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert "unexpected" not in err
    assert db.read_bytes() == before
    assert not (cli.state / "flatnet.sqlite-wal").exists() or (
        (cli.state / "flatnet.sqlite-wal").stat().st_size == 0
    )
