"""The one seam between flatnet and pyroute2.

``open_iproute()`` opens an rtnetlink socket in the current or a named
network namespace; ``netlink_errors()`` is the single place where
pyroute2's ``NetlinkError`` becomes a flatnet exception; ``tolerating()``
lets ``ensure_*``/``delete_*`` code name the errno it accepts.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute_netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netns import NETNS_RUN_DIR

from flatnet import exception


def open_iproute(netns: str | None = None) -> Any:
    """An ``IPRoute`` in ``netns`` (None: the current namespace).

    Never creates a namespace and subscribes to no multicast groups, so
    an idle socket queues nothing. The caller closes it. Raises OSError
    (FileNotFoundError) if the namespace does not exist.
    """
    if netns is None:
        return IPRoute(groups=0)
    # NOTE: checked here because a failed IPRoute() leaks its event loop
    # and socket (pyroute2 0.9.7), which the tests' warnings=error catch.
    path = netns if os.path.dirname(netns) else f"{NETNS_RUN_DIR}/{netns}"
    if not os.path.exists(path):
        raise FileNotFoundError(
            errno.ENOENT, "no such network namespace", path
        )
    return IPRoute(netns=netns, flags=0, groups=0)


@contextlib.contextmanager
def netlink_errors(device: str) -> Iterator[None]:
    """Translate netlink failures about ``device``.

    ENODEV becomes DeviceNotFound; any other NetlinkError, and OSError
    from opening the socket (e.g. a missing namespace), becomes
    BridgeSetupError. Always chained with ``from``.
    """
    try:
        yield
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            raise exception.DeviceNotFound(device=device) from exc
        name = errno.errorcode.get(exc.code, str(exc.code))
        raise exception.BridgeSetupError(
            device=device, reason=f"{name}: {os.strerror(exc.code)}"
        ) from exc
    except OSError as exc:
        raise exception.BridgeSetupError(
            device=device, reason=str(exc)
        ) from exc


@contextlib.contextmanager
def tolerating(*codes: int) -> Iterator[None]:
    """Ignore a NetlinkError whose errno is one of ``codes``."""
    try:
        yield
    except NetlinkError as exc:
        if exc.code not in codes:
            raise


# --- DHCP shards: a namespace per shard, a veth into the bridge -----------
_CLONE_NEWNET = 0x40000000


def _libc_setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@contextlib.contextmanager
def entered(netns: str) -> Iterator[None]:
    """Run the body with THIS thread in network namespace ``netns``
    (setns(2) changes only the calling thread); sockets created inside
    stay in it. Raises OSError if the namespace does not exist."""
    target = os.open(f"{NETNS_RUN_DIR}/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _libc_setns(target)
        try:
            yield
        finally:
            _libc_setns(home)
    finally:
        os.close(target)
        os.close(home)


def netns_exists(netns: str) -> bool:
    return os.path.exists(f"{NETNS_RUN_DIR}/{netns}")


def ensure_netns(netns: str) -> bool:
    """Create the named namespace ``netns`` (lo up); True if created."""
    if netns_exists(netns):
        return False
    with netlink_errors(netns):
        pyroute_netns.create(netns)
        with contextlib.closing(open_iproute(netns)) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    return True


def delete_netns(netns: str) -> None:
    """Remove the named namespace (its links go with it); nothing if
    it is gone. Processes still inside keep it alive, unnamed."""
    if not netns_exists(netns):
        return
    with netlink_errors(netns):
        pyroute_netns.remove(netns)


def ensure_shard_link(
    host_netns: str | None,
    bridge: str,
    veth: str,
    netns: str,
    address: str,
) -> None:
    """Veth ``veth`` (in ``host_netns``, a port of ``bridge``, up) whose
    peer is ``eth0`` in ``netns`` with ``address`` (``a.b.c.d/len``),
    up. Idempotent; a half-made pair (killed in between) is completed."""
    ip, prefix = address.split("/")
    with (
        netlink_errors(veth),
        contextlib.closing(open_iproute(host_netns)) as ipr,
    ):
        if not ipr.link_lookup(ifname=veth):
            with contextlib.closing(open_iproute(netns)) as inner:
                with tolerating(errno.ENODEV):
                    inner.link("del", ifname="eth0")  # a stale peer
            ns_fd = os.open(f"{NETNS_RUN_DIR}/{netns}", os.O_RDONLY)
            try:
                ipr.link(
                    "add",
                    ifname=veth,
                    kind="veth",
                    peer={"ifname": "eth0", "net_ns_fd": ns_fd},
                )
            finally:
                os.close(ns_fd)
        index, master = _index(ipr, veth), _index(ipr, bridge)
        ipr.link("set", index=index, master=master, state="up")
    with (
        netlink_errors("eth0"),
        contextlib.closing(open_iproute(netns)) as ipr,
    ):
        index = _index(ipr, "eth0")
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index)}
        if ip not in have:
            ipr.addr("add", index=index, address=ip, prefixlen=int(prefix))
        ipr.link("set", index=index, state="up")


def _index(ipr: IPRoute, name: str) -> int:
    """The index of link ``name``; DeviceNotFound if there is none."""
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise exception.DeviceNotFound(device=name)
    return int(found[0])


def delete_link(host_netns: str | None, name: str) -> None:
    """Delete link ``name`` in ``host_netns``; nothing if it is gone."""
    with (
        netlink_errors(name),
        contextlib.closing(open_iproute(host_netns)) as ipr,
    ):
        for index in ipr.link_lookup(ifname=name):
            with tolerating(errno.ENODEV):
                ipr.link("del", index=index)
