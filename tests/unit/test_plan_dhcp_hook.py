"""plan/dhcp_hook.py: the sh hook text, and the real script under /bin/sh
with valid and hostile arguments."""

from __future__ import annotations

import os
import subprocess

import pytest

from flatnet.plan import dhcp_hook

MAC = "fa:16:3e:00:00:01"


def test_script_text_quotes_the_python_hook():
    text = dhcp_hook.hook_script("/opt/it's here/flatnet-dhcpbridge")
    assert text.startswith("#!/bin/sh\n")
    assert "PYHOOK='/opt/it'\"'\"'s here/flatnet-dhcpbridge'\n" in text
    assert 'printf \'\\n%s %s %s\\n\' "$1" "$2" "$3" >> ' in text


@pytest.fixture
def hook(tmp_path):
    """The rendered script plus a stand-in Python hook that records how
    it was exec'ed."""
    record = tmp_path / "exec.log"
    pyhook = tmp_path / "pyhook"
    pyhook.write_text(f'#!/bin/sh\necho "$#:$1" >> {record}\n')
    pyhook.chmod(0o755)
    script = tmp_path / "flatnet-dhcp-script"
    script.write_text(dhcp_hook.hook_script(str(pyhook)))
    script.chmod(0o755)
    journal = tmp_path / "nova-br100.events"

    def run(
        *args: str, events: str | None = str(journal), status: int = 0
    ) -> str:
        env = {"PATH": "/usr/bin:/bin"}
        if events is not None:
            env["FLATNET_EVENTS"] = events
        done = subprocess.run(
            [str(script), *args], env=env, timeout=10, check=False
        )
        assert done.returncode == status
        return journal.read_text() if journal.is_file() else ""

    run.record = record  # type: ignore[attr-defined]
    return run


def test_valid_events_are_journaled_one_line_each(hook):
    hook("add", MAC, "10.0.0.3", "vm1")
    hook("old", MAC, "10.0.0.3")
    text = hook("del", MAC, "10.0.0.3", "evil\nname")
    assert text == (
        f"\nadd {MAC} 10.0.0.3\n\nold {MAC} 10.0.0.3\n\ndel {MAC} 10.0.0.3\n"
    )
    assert not hook.record.exists()


def test_new_journal_is_root_only(hook, tmp_path):
    hook("add", MAC, "10.0.0.3")
    mode = (tmp_path / "nova-br100.events").stat().st_mode
    assert mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "address", ["0.0.0.0", "9.99.199.249", "255.255.255.255", "10.0.0.250"]
)
def test_every_octet_0_to_255_is_journaled(hook, address):
    assert hook("add", MAC, address) == f"\nadd {MAC} {address}\n"


def test_unwritable_journal_counts_losses_in_place(hook, tmp_path):
    """PATH empty: the failure path uses builtins only."""
    (tmp_path / "nova-br100.events").mkdir()  # any append fails
    lost = tmp_path / "nova-br100.lost"
    lost.write_text(f"{0:12d}\n{0:12d}\n")
    script = tmp_path / "flatnet-dhcp-script"
    env = {"PATH": "", "FLATNET_EVENTS": str(tmp_path / "nova-br100.events")}
    for _ in range(3):
        done = subprocess.run(
            [str(script), "add", MAC, "10.0.0.3"],
            env=env,
            timeout=10,
            check=False,
        )
        assert done.returncode == 1
    assert lost.read_text() == f"{3:12d}\n{0:12d}\n"  # line 2 untouched
    assert not hook.record.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("add", "fa:16:3e:00:00:01\nadd", "10.0.0.3"),
        ("add", MAC, "10.0.0.3\ndel x y"),
        ("add", MAC, "10.0.0.3 x"),
        ("add", MAC, "1.2.3"),
        ("add", MAC, "1.2.3.4.5"),
        ("add", MAC, "1..2.3"),
        ("add", MAC, "1111111111111111.1.1.1"),
        ("add", MAC, "10.0.0.256"),
        ("add", MAC, "999.1.1.1"),
        ("add", MAC, "1.300.1.1"),
        ("add", MAC, "10.0.01.3"),
        ("add", MAC, "10.0.0.00"),
        ("add", "01-fa:16:3e:00:00:01", "10.0.0.3"),
        ("add", MAC),
        ("add",),
        ("tftp", "1000", "10.0.0.3", "/file"),
        ("init",),
        ("add", "x" * 100000, "10.0.0.3"),
    ],
)
def test_anything_unexpected_goes_to_the_python_hook(hook, args):
    assert hook(*args) == ""
    assert hook.record.read_text() == f"{len(args)}:{args[0]}\n"


def test_missing_or_odd_journal_env_goes_to_the_python_hook(hook, tmp_path):
    assert hook("add", MAC, "10.0.0.3", events=None) == ""
    hook("add", MAC, "10.0.0.3", events="relative.events")
    hook("add", MAC, "10.0.0.3", events=str(tmp_path / "x.log"))
    assert hook.record.read_text().count("4:add") == 0
    assert hook.record.read_text().count("3:add") == 3
    assert not os.path.exists(tmp_path / "x.log")


def test_script_text_has_a_builtin_only_init_branch():
    text = dhcp_hook.hook_script("/usr/bin/flatnet-dhcpbridge")
    branch = text[text.index("init)") : text.index("*) exec")]
    assert 'INIT="${FLATNET_EVENTS%.events}.init"' in branch
    assert "while IFS= read -r line; do printf '%s\\n' \"$line\"" in branch
    assert 'exec "$PYHOOK" "$@"' in branch  # the fallback
    for program in ("cat", "sed", "awk", "head"):
        assert f"{program} " not in branch


SNAPSHOT = (
    "1700000120 fa:16:3e:00:00:01 10.0.0.3 vm1 *\n"
    "1700000120 fa:16:3e:00:00:02 10.0.0.4 * *\n"
)


def _init(tmp_path, hook, env: dict[str, str]) -> str:
    script = tmp_path / "flatnet-dhcp-script"
    done = subprocess.run(
        [str(script), "init"],
        env=env,
        check=True,
        timeout=10,
        capture_output=True,
        text=True,
    )
    assert done.stderr == ""
    return done.stdout


def test_init_prints_the_snapshot_with_builtins_only(hook, tmp_path):
    (tmp_path / "nova-br100.init").write_text(SNAPSHOT)
    events = str(tmp_path / "nova-br100.events")
    # PATH empty: any external program would fail to run
    out = _init(tmp_path, hook, {"PATH": "", "FLATNET_EVENTS": events})
    assert out == SNAPSHOT
    assert not hook.record.exists()  # the Python hook was not run
    (tmp_path / "nova-br100.init").write_text("")
    assert _init(tmp_path, hook, {"FLATNET_EVENTS": events}) == ""
    assert not hook.record.exists()  # empty snapshot = no leases


def test_init_without_snapshot_falls_back_to_the_python_hook(hook, tmp_path):
    events = str(tmp_path / "nova-br100.events")
    env = {"PATH": "/usr/bin:/bin", "FLATNET_EVENTS": events}
    assert _init(tmp_path, hook, env) == ""
    assert hook.record.read_text() == "1:init\n"
    (tmp_path / "nova-br100.init").mkdir()  # not a regular file
    assert _init(tmp_path, hook, env) == ""
    assert hook.record.read_text() == "1:init\n" * 2


def test_init_snapshot_is_ignored_without_a_journal_env(hook, tmp_path):
    (tmp_path / "nova-br100.init").write_text(SNAPSHOT)
    env = {"PATH": "/usr/bin:/bin"}
    assert _init(tmp_path, hook, env) == ""
    env["FLATNET_EVENTS"] = str(tmp_path / "nova-br100.log")
    assert _init(tmp_path, hook, env) == ""
    assert hook.record.read_text() == "1:init\n" * 2
