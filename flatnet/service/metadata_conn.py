"""One client connection of the metadata server (an asyncio Protocol).

HTTP/1.1 with keep-alive; requests on one connection are answered in
order, one at a time (pipelined requests wait in the buffer). A request
whose instance is in the cache is answered inside ``data_received``
without creating a task; a cache miss awaits the lookup in a task.

Limits: a request head larger than ``max_head_bytes`` gets 431; a head
not complete ``header_timeout`` seconds after its first byte gets 408
(slowloris); an idle keep-alive connection is closed after
``idle_timeout``. Deadlines are checked by the server's sweeper, so a
request costs no timer. A client that does not read its answers stops
being read (transport flow control), so it cannot grow our buffers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from flatnet.service import metadata_http as http

if TYPE_CHECKING:
    from flatnet.plan.metadata import MetadataTree
    from flatnet.service.metadata_server import MetadataServer

LOG = logging.getLogger(__name__)


def source_ip(peer: object) -> str:
    """The peer's address; an IPv4-mapped IPv6 address as IPv4."""
    if not isinstance(peer, tuple) or not peer:
        return ""
    ip = str(peer[0])
    if ip.startswith("::ffff:") and "." in ip:
        return ip[len("::ffff:") :]
    return ip


class Connection(asyncio.Protocol):
    """Reads request heads, answers them through the server."""

    def __init__(self, server: MetadataServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.ip = ""
        self.buf = bytearray()
        self.busy = False
        self.closing = False
        self.write_paused = False
        self.read_paused = False
        self.in_head = False
        self.deadline = 0.0
        self.task: asyncio.Task[None] | None = None

    # -- asyncio callbacks -------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101
        self.transport = transport
        self.ip = source_ip(transport.get_extra_info("peername"))
        if not self.server.admit(self):
            LOG.warning("metadata: refusing %s: too many connections", self.ip)
            self.closing = True
            transport.write(http.error(503))
            transport.close()
            return
        self._wait(idle=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.release(self)
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.busy:
            self._process()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buf += data
        if self.busy or self.write_paused:
            if len(self.buf) > self.server.settings.max_head_bytes:
                self._pause_reading()
            return
        self._process()

    # -- deadlines ---------------------------------------------------
    def _wait(self, *, idle: bool) -> None:
        settings = self.server.settings
        delay = settings.idle_timeout if idle else settings.header_timeout
        self.in_head = not idle
        self.deadline = self.server.now() + delay

    def expire(self, now: float) -> None:
        """Called by the server's sweeper."""
        if self.busy or self.closing or self.deadline > now:
            return
        if self.in_head:
            LOG.info("metadata: %s sent no complete request in time", self.ip)
            self._fail(408)
        else:
            self.close()

    def close(self) -> None:
        """Close now (idle connection, server stopping)."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    # -- requests ----------------------------------------------------
    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    def _process(self) -> None:
        limit = self.server.settings.max_head_bytes
        while not (self.busy or self.closing or self.write_paused):
            end = self.buf.find(b"\r\n\r\n")
            if end < 0 or end > limit:
                if len(self.buf) > limit:
                    self._fail(431)
                elif self.buf and not self.in_head:
                    self._wait(idle=False)
                self._resume_reading()
                return
            head = bytes(self.buf[:end])
            del self.buf[: end + 4]
            self._request(head)

    def _request(self, head: bytes) -> None:
        try:
            req = http.parse_head(head, self.server.settings.max_headers)
        except http.HttpError as exc:
            LOG.info("metadata: %s bad request: %s", self.ip, exc)
            self._fail(exc.status)
            return
        hit, tree = self.server.cache.peek(self.ip)
        if hit:
            self._finish(req, tree)
            return
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(self._slow(req))

    async def _slow(self, req: http.Request) -> None:
        try:
            tree = await self.server.cache.get(self.ip)
        except Exception:
            LOG.exception("metadata: lookup of %s failed", self.ip)
            self._fail(500)
            return
        finally:
            self.busy = False
            self.task = None
        self._finish(req, tree)
        self._process()

    def _finish(self, req: http.Request, tree: MetadataTree | None) -> None:
        keep = req.keep_alive and not self.server.stopping
        status, payload = self.server.respond(self.ip, req, tree, keep)
        assert self.transport is not None  # noqa: S101
        self.transport.write(payload)
        if not keep:
            self.close()
        elif not self.buf:
            self._wait(idle=True)
        else:
            self.in_head = False

    def _fail(self, status: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(http.error(status))
        self.close()
