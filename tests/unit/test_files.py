"""linux/files.py: atomic replacement, change detection, modes."""

from __future__ import annotations

import os

import pytest

from flatnet import exception
from flatnet.linux import files


def test_replace_file_is_atomic_and_sets_mode(tmp_path):
    path = tmp_path / "nova-br100.conf"
    path.write_text("old\n")
    inode = os.stat(path).st_ino
    files.replace_file(str(path), "new\n", mode=0o644)
    assert path.read_text() == "new\n"
    assert os.stat(path).st_ino != inode  # renamed over, not rewritten
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["nova-br100.conf"]  # no temp left


def test_ensure_file_writes_only_on_change(tmp_path):
    path = str(tmp_path / "f")
    assert files.ensure_file(path, "a\n") is True
    inode = os.stat(path).st_ino
    assert files.ensure_file(path, "a\n") is False
    assert os.stat(path).st_ino == inode
    os.chmod(path, 0o600)
    assert files.ensure_file(path, "a\n") is True  # mode counts too
    assert files.ensure_file(path, "b\n", mode=0o755) is True
    assert os.stat(path).st_mode & 0o777 == 0o755


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "x").write_text("x")
    with pytest.raises(exception.HostNetworkError, match="dir-in-the-way"):
        files.replace_file(str(target), "new")
    assert sorted(os.listdir(tmp_path)) == ["dir-in-the-way"]


def test_dir_helpers(tmp_path):
    d = str(tmp_path / "a" / "b")
    files.ensure_dir(d)
    files.ensure_dir(d)
    files.replace_file(os.path.join(d, "x"), "1", durable=False)
    open(os.path.join(d, ".hidden"), "w").close()
    assert files.list_dir(d) == ["x"]
    assert files.delete_file(os.path.join(d, "x")) is True
    assert files.delete_file(os.path.join(d, "x")) is False
    assert files.list_dir(str(tmp_path / "missing")) == []
    assert files.read_text(str(tmp_path / "missing")) is None


def test_ensure_dir_sets_the_mode_whatever_the_umask(tmp_path):
    path = tmp_path / "networks"
    old = os.umask(0o077)
    try:
        files.ensure_dir(str(path))
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o755
    path.chmod(0o700)
    files.ensure_dir(str(path))  # an existing directory is fixed too
    assert os.stat(path).st_mode & 0o777 == 0o755


def test_closed_to_others_names_the_first_closed_directory(tmp_path):
    top = tmp_path / "top"
    inner = top / "a" / "b"
    inner.mkdir(parents=True, mode=0o755)
    for folder in (top, top / "a", inner):
        folder.chmod(0o755)
    tmp_path.chmod(0o755)
    (top / "a").chmod(0o700)
    assert files.closed_to_others(str(inner / "missing")) == str(top / "a")
    (top / "a").chmod(0o755)
    found = files.closed_to_others(str(inner))
    # next closed one (if any) is above tmp_path: pytest's 0700 base
    assert found is None or str(tmp_path).startswith(found + "/")
    assert files.closed_to_others("/") is None
