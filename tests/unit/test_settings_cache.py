"""The settings cache (flatnet.settings.cache): a hit is the same
Settings as a full load and skips oslo.config; every input of the
settings (file bytes, OS_* environment, flatnet's code) is a miss when
it changes; an entry that is not the user's own, not private, or that
would build anything but settings is ignored; a cache that cannot be
written costs nothing but speed."""

from __future__ import annotations

import os
import pathlib
import pickle
import subprocess
import sys

import pytest

from flatnet import exception, settings
from flatnet.settings import cache, config_files
from tests import tmpfs

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def conf(tmp_path, monkeypatch) -> pathlib.Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FLATNET_SETTINGS_CACHE", raising=False)
    path = tmp_path / "flatnet.conf"
    path.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path}/state\nhost = node1\n"
        "sync_interval = 7\n"
    )
    return path


@pytest.fixture
def builds(monkeypatch) -> list[int]:
    """Counts full loads (oslo.config parse and validation)."""
    calls: list[int] = []
    real = settings._build

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(settings, "_build", counting)
    return calls


def _entry(conf: pathlib.Path) -> pathlib.Path:
    (entry,) = pathlib.Path(cache.directory()).glob("*.settings")
    return entry


def test_a_hit_is_the_full_load_without_building(conf, builds) -> None:
    first = settings.load([str(conf)], cached=True)
    second = settings.load([str(conf)], cached=True)
    assert builds == [1]
    assert second == first == settings.load([str(conf)])
    assert second.daemon.sync_interval == 7
    entry = _entry(conf)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert entry.parent.stat().st_mode & 0o777 == 0o700


def test_uncached_and_origins_loads_always_build(conf, builds) -> None:
    settings.load([str(conf)], cached=True)
    settings.load([str(conf)])
    settings.load([str(conf)], cached=True, with_origins=True)
    assert len(builds) == 3


def test_a_changed_file_is_a_miss(conf, builds) -> None:
    settings.load([str(conf)], cached=True)
    conf.write_text(conf.read_text().replace("= 7", "= 9"))
    assert settings.load([str(conf)], cached=True).daemon.sync_interval == 9
    assert len(builds) == 2


def test_a_bad_value_is_never_cached(conf, builds) -> None:
    settings.load([str(conf)], cached=True)
    conf.write_text(conf.read_text().replace("= 7", "= fast"))
    for _ in range(2):
        with pytest.raises(exception.ConfigError, match="sync_interval"):
            settings.load([str(conf)], cached=True)
    assert len(builds) == 3


def test_the_oslo_environment_is_part_of_the_key(
    conf, builds, monkeypatch
) -> None:
    assert settings.load([str(conf)], cached=True).host == "node1"
    monkeypatch.setenv("OS_DEFAULT__SYNC_INTERVAL", "11")
    loaded = settings.load([str(conf)], cached=True)
    assert len(builds) == 2
    assert loaded == settings.load([str(conf)])


def test_a_changed_module_is_a_miss(conf, builds, tmp_path) -> None:
    """An entry records the files of flatnet's (and its libraries')
    modules; one that changed (an upgrade, an edited default) is a
    miss. Here the stamp of a stand-in module file."""
    module = tmp_path / "stand_in.py"
    module.write_text("X = 1\n")
    source = config_files.find_config([str(conf)])
    digest = cache.key(source)
    assert digest is not None
    built = settings.load([str(conf)])
    stamp = cache._stamp(str(module))
    assert stamp is not None
    cache.store(source, digest, built, [*cache.stamps(), stamp])
    assert cache.lookup(source, digest) == built
    module.write_text("X = 22\n")
    assert cache.lookup(source, digest) is None
    assert settings.load([str(conf)], cached=True) == built
    assert len(builds) == 2  # the one above, and this miss


def test_stamps_cover_flatnet_and_oslo_config(conf) -> None:
    settings.load([str(conf)])
    files = {path for path, _m, _s in cache.stamps()}
    assert str(ROOT / "flatnet" / "conf" / "network.py") in files
    assert str(ROOT / "flatnet" / "settings" / "sections.py") in files
    assert any("/oslo_config/cfg.py" in f for f in files)


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_a_file_others_may_write_is_ignored(conf, builds, mode) -> None:
    settings.load([str(conf)], cached=True)
    _entry(conf).chmod(mode)
    settings.load([str(conf)], cached=True)
    assert len(builds) == 2


@pytest.mark.root
def test_an_entry_of_another_user_is_ignored(conf, builds) -> None:
    settings.load([str(conf)], cached=True)
    os.chown(_entry(conf), 65534, 65534)
    settings.load([str(conf)], cached=True)
    assert len(builds) == 2


def test_a_shared_directory_is_neither_read_nor_written(conf, builds) -> None:
    settings.load([str(conf)], cached=True)
    entry = _entry(conf)
    entry.parent.chmod(0o777)
    try:
        settings.load([str(conf)], cached=True)
        settings.load([str(conf)], cached=True)
        assert len(builds) == 3
    finally:
        entry.parent.chmod(0o700)


def test_a_link_is_not_followed(conf, builds, tmp_path) -> None:
    settings.load([str(conf)], cached=True)
    entry = _entry(conf)
    real = tmp_path / "elsewhere"
    entry.rename(real)
    entry.symlink_to(real)
    settings.load([str(conf)], cached=True)
    assert len(builds) == 2


def test_an_entry_that_builds_anything_else_is_refused(
    conf, builds, tmp_path
) -> None:
    """Defence in depth: even a private file is unpickled with only
    flatnet's settings classes (and netaddr's addresses) allowed."""
    settings.load([str(conf)], cached=True)
    entry = _entry(conf)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    source = config_files.find_config([str(conf)])
    digest = cache.key(source)
    payload = pickle.dumps((digest, [], Evil()))
    entry.write_bytes(cache.FORMAT + b"\n" + payload)
    loaded = settings.load([str(conf)], cached=True)
    assert not marker.exists()
    assert len(builds) == 2
    assert loaded == settings.load([str(conf)])


@pytest.mark.parametrize("cut", [0, 10, 40, -1])
def test_a_torn_or_foreign_entry_is_a_miss(conf, builds, cut) -> None:
    settings.load([str(conf)], cached=True)
    entry = _entry(conf)
    data = entry.read_bytes()
    entry.write_bytes(data[:cut] if cut >= 0 else b"not a cache\n" + data)
    assert settings.load([str(conf)], cached=True).host == "node1"
    assert len(builds) == 2
    assert settings.load([str(conf)], cached=True).host == "node1"
    assert len(builds) == 2  # rewritten whole


def test_remote_config_sources_are_not_cached(conf) -> None:
    """oslo.config's config_source reads settings from elsewhere: such
    a configuration is never cached (a comment naming it is no matter)."""
    source = config_files.find_config([str(conf)])
    conf.write_text(conf.read_text() + "# config_source = remote\n")
    assert cache.key(source) is not None
    conf.write_text(conf.read_text() + " config_source = remote\n")
    assert cache.key(source) is None


def test_turned_off_by_the_environment(conf, builds, monkeypatch) -> None:
    monkeypatch.setenv("FLATNET_SETTINGS_CACHE", "0")
    settings.load([str(conf)], cached=True)
    settings.load([str(conf)], cached=True)
    assert len(builds) == 2
    assert not pathlib.Path(cache.directory()).exists()


def test_old_entries_are_pruned(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for n in range(2 * cache.MAX_ENTRIES + 1):
        path = tmp_path / f"f{n}.conf"
        path.write_text(f"[DEFAULT]\nstate_path = {tmp_path}/s\n")
        settings.load([str(path)], cached=True)
    left = list(pathlib.Path(cache.directory()).iterdir())
    assert len(left) == cache.MAX_ENTRIES


@pytest.mark.root
def test_a_full_disk_costs_only_speed(conf, tmp_path, monkeypatch) -> None:
    """The cache on a full tmpfs: every load still answers, and no
    partial or temporary file is left."""
    with tmpfs.mounted(tmp_path / "tiny", "8k") as mnt:
        (mnt / "flatnet").mkdir(mode=0o700)
        with pytest.raises(OSError, match="No space"):
            (mnt / "filler").write_bytes(b"x" * 65536)
        monkeypatch.setenv("XDG_CACHE_HOME", str(mnt))
        for _ in range(2):
            assert settings.load([str(conf)], cached=True).host == "node1"
        assert os.listdir(mnt / "flatnet") == []


def test_a_warm_cache_runs_a_command_without_oslo_config(conf) -> None:
    """The point of the cache: flatnet-manage on an unchanged
    configuration imports no oslo.config (the first call does)."""
    script = (
        "import sys\nfrom flatnet.cmd import manage\n"
        "rc = manage.main(sys.argv[1:])\n"
        "print('OSLO', 'oslo_config' in sys.modules, rc)\n"
    )
    argv = [sys.executable, "-c", script, "--config-file", str(conf)]
    seen = []
    for command in (["db", "sync"], ["network", "list"]):
        out = subprocess.run(
            [*argv, *command],
            capture_output=True, text=True, check=False, env=os.environ,
        )  # fmt: skip
        seen.append(out.stdout.strip().splitlines()[-1])
    assert seen == ["OSLO True 0", "OSLO False 0"]
