"""EXECUTOR (read-only): is dnsmasq's script helper still alive?

dnsmasq forks ONE helper for ``--dhcp-script``/``--dhcp-luascript``
before it drops to ``nobody`` (helper.c ``create_helper``, called from
dnsmasq.c before the privilege drop): the helper keeps the script user,
root by default (dnsmasq(8) ``--dhcp-scriptuser``), while every later
child (TCP DNS workers) is forked by the ``nobody`` server. An error
escaping a Lua ``lease()`` (called with lua_call) kills the helper and
dnsmasq serves on without it, recording nothing. So "has a child whose
real uid is 0" is "still has its helper" (proc(5)
``/proc/<pid>/task/<tid>/children``).
"""

from __future__ import annotations

import os

from flatnet.linux.procfs import real_uid

ROOT_UID = 0


def children(pid: int, proc: str = "/proc") -> list[int] | None:
    """Child pids of ``pid`` (all its threads); None if it is gone."""
    try:
        tasks = os.listdir(f"{proc}/{pid}/task")
    except OSError:
        return None
    found: list[int] = []
    for task in tasks:
        try:
            with open(f"{proc}/{pid}/task/{task}/children") as handle:
                found += [int(word) for word in handle.read().split()]
        except (OSError, ValueError):
            continue
    return found


def has_helper(pid: int, proc: str = "/proc") -> bool:
    """True if ``pid`` has a child running as root (its script helper);
    False if it has none or is gone."""
    found = children(pid, proc) or []
    return any(real_uid(child, proc) == ROOT_UID for child in found)
