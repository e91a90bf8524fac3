"""The one seam between flatnet and pyroute2.

``open_iproute()`` opens an rtnetlink socket in the current or a named
network namespace; ``netlink_errors()`` is the single place where
pyroute2's ``NetlinkError`` becomes a flatnet exception; ``tolerating()``
lets ``ensure_*``/``delete_*`` code name the errno it accepts.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute
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
