"""linux/dnsmasq_helper.py on a fake /proc tree: a root child is the
script helper; ``nobody`` children (TCP DNS workers) are not."""

from __future__ import annotations

import pathlib

from flatnet.linux import dnsmasq_helper


def _proc(root: pathlib.Path, pid: int, uid: int, children: str = "") -> None:
    task = root / str(pid) / "task" / str(pid)
    task.mkdir(parents=True)
    (task / "children").write_text(children)
    (root / str(pid) / "status").write_text(
        f"Name:\tdnsmasq\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
    )


def test_root_child_is_the_helper(tmp_path):
    _proc(tmp_path, 10, 65534, "11 12 ")
    _proc(tmp_path, 11, 65534)  # a TCP worker
    _proc(tmp_path, 12, 0)  # the helper
    assert dnsmasq_helper.children(10, str(tmp_path)) == [11, 12]
    assert dnsmasq_helper.has_helper(10, str(tmp_path))


def test_no_root_child_no_helper(tmp_path):
    _proc(tmp_path, 10, 65534, "11")
    _proc(tmp_path, 11, 65534)
    assert not dnsmasq_helper.has_helper(10, str(tmp_path))
    _proc(tmp_path, 20, 65534, "21")  # child already gone
    assert not dnsmasq_helper.has_helper(20, str(tmp_path))


def test_gone_process(tmp_path):
    assert dnsmasq_helper.children(99, str(tmp_path)) is None
    assert not dnsmasq_helper.has_helper(99, str(tmp_path))
