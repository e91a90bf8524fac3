"""Waking the local flatnet-network at once after a database change.

flatnet-network polls the database every ``sync_interval``; a change
made on the same host (a compute driver's ``allocate_for_instance``, an
all-in-one host's DHCP and filters) would wait up to that long before
the loop even looks. :class:`Waker` is a UNIX datagram socket in
``state_path`` (``flatnet-network.wake``) whose datagrams set the loop's
wake event; :func:`notify` sends one, never blocking and never failing
(no daemon, a full queue, a stale socket: the poll still comes).

A wake carries no data and changes nothing but when the next poll runs:
the database stays the only source of what to apply, so a spoofed or
lost wake costs at most one early poll or one ``sync_interval``. The
socket is mode 0660, group of ``state_path`` (the operator puts the
compute driver's user in that group).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import socket
import threading

LOG = logging.getLogger(__name__)
NAME = "flatnet-network.wake"


def path_in(state_path: str) -> str:
    """The wake socket of the flatnet-network using ``state_path``."""
    return str(pathlib.Path(state_path) / NAME)


def notify(path: str) -> bool:
    """One wake datagram to ``path``; False (and nothing else) when no
    daemon listens there or its queue is full."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(b"w", path)
        except OSError:  # ENOENT, ECONNREFUSED, EAGAIN, EACCES
            return False
    return True


class Waker:
    """The daemon's end: a thread that sets ``wake`` on each datagram
    until :meth:`close`."""

    def __init__(self, path: str, wake: threading.Event) -> None:
        self.path, self.wake = path, wake
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            if pathlib.Path(path).is_socket():
                os.unlink(path)  # a previous daemon's (killed)
        self._sock.bind(path)
        os.chmod(path, 0o660)
        group = os.stat(os.path.dirname(path) or ".").st_gid
        os.chown(path, -1, group)
        self._sock.settimeout(0.5)
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name="wake", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                self._sock.recv(64)
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._closed.is_set():
                    LOG.warning("wake socket %s: %s", self.path, exc)
                return
            self.wake.set()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
