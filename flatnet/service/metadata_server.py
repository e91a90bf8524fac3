"""The metadata service: nova's metadata paths over HTTP, per source IP.

An instance is identified ONLY by the TCP source address of its
connection, looked up through the injected ``lookup(ip)``. On a flat
network that address is trustworthy because the compute firewall's
anti-spoofing filters drop any packet whose source is not the
instance's own address; no header a guest can set (``X-Forwarded-For``,
``X-Instance-ID``, ...) is ever read for identification (OSSN-0074).
An address no instance has gets 404 for every path, so no instance can
read another's data.

Only GET and HEAD are answered (405 otherwise), plus the optional
IMDSv2-style ``PUT /latest/api/token`` (``tokens`` setting:
``disabled``, ``optional`` or ``required``; see metadata_tokens.py).

``serve(settings, lookup)`` runs the server until SIGTERM or SIGINT,
then stops accepting, lets requests in flight finish (up to
``shutdown_grace`` seconds) and returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import time
from collections.abc import Callable

from flatnet.plan import metadata as plan
from flatnet.service import metadata_http as http
from flatnet.service import metadata_tokens as tokens
from flatnet.service.metadata_cache import InstanceCache, Lookup
from flatnet.service.metadata_conn import Connection
from flatnet.service.settings import (
    TOKEN_MODES as TOKEN_MODES,  # noqa: PLC0414
)
from flatnet.service.settings import (
    MetadataSettings as MetadataSettings,  # noqa: PLC0414
)

LOG = logging.getLogger(__name__)

Generation = Callable[[], int]
_RANDOM_SEED_BYTES = 512  # nova _metadata_as_json: os.urandom(512)
_SWEEP_INTERVAL = 0.25


def _random_seed() -> bytes:
    return os.urandom(_RANDOM_SEED_BYTES)


class MetadataServer:
    """The listening socket, its connections and the instance cache."""

    def __init__(
        self,
        settings: MetadataSettings,
        lookup: Lookup,
        generation: Generation | None = None,
    ) -> None:
        self.settings = settings
        self._lookup = lookup
        self._generation = generation
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.lookup_workers,
            thread_name_prefix="metadata-lookup",
        )
        self.cache = InstanceCache(
            lookup, self._executor, settings.cache, settings.vendor_data
        )
        enabled = settings.tokens != "disabled"
        self.signer = tokens.TokenSigner() if enabled else None
        self.stopping = False
        self.port = 0
        self._conns: set[Connection] = set()
        self._per_ip: dict[str, int] = {}
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()

    # -- lifecycle ---------------------------------------------------
    async def start(self) -> None:
        """Bind and start accepting (``port`` is then the bound port)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self),
            self.settings.listen_host,
            self.settings.listen_port,
            reuse_address=True,
            backlog=self.settings.backlog,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(loop.create_task(self._sweep()))
        if self._generation is not None:
            self._tasks.append(loop.create_task(self._watch_generation()))
        LOG.info(
            "metadata: listening on %s:%d (tokens %s)",
            self.settings.listen_host,
            self.port,
            self.settings.tokens,
        )

    async def stop(self) -> None:
        """Stop accepting, finish requests in flight, close the rest."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            if not conn.busy:
                conn.close()
        if self._conns:
            self._idle.clear()
            try:
                await asyncio.wait_for(
                    self._idle.wait(), self.settings.shutdown_grace
                )
            except TimeoutError:
                LOG.warning(
                    "metadata: aborting %d connections", len(self._conns)
                )
                for conn in list(self._conns):
                    if conn.transport is not None:
                        conn.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
        LOG.info("metadata: stopped")

    def invalidate(self) -> None:
        """Drop every cached answer (the database changed)."""
        self.cache.invalidate()

    # -- connections -------------------------------------------------
    def now(self) -> float:
        return time.monotonic()

    def admit(self, conn: Connection) -> bool:
        count = self._per_ip.get(conn.ip, 0)
        if (
            self.stopping
            or len(self._conns) >= self.settings.max_connections
            or count >= self.settings.max_connections_per_ip
        ):
            return False
        self._conns.add(conn)
        self._per_ip[conn.ip] = count + 1
        return True

    def release(self, conn: Connection) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        left = self._per_ip[conn.ip] - 1
        if left:
            self._per_ip[conn.ip] = left
        else:
            del self._per_ip[conn.ip]
        if not self._conns:
            self._idle.set()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            now = self.now()
            for conn in list(self._conns):
                conn.expire(now)

    async def _watch_generation(self) -> None:
        assert self._generation is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        last: int | None = None
        failing = False
        while True:
            try:
                gen = await loop.run_in_executor(
                    self._executor, self._generation
                )
            except Exception as exc:  # a DB outage must not stop serving
                if not failing:
                    LOG.warning("metadata: generation check failed: %s", exc)
                failing = True
            else:
                failing = False
                if last is not None and gen != last:
                    self.cache.invalidate()
                last = gen
            await asyncio.sleep(self.settings.generation_interval)

    # -- answers -----------------------------------------------------
    def respond(
        self,
        ip: str,
        req: http.Request,
        tree: plan.MetadataTree | None,
        keep: bool,
    ) -> tuple[int, bytes]:
        """(status, full response bytes) for one request from ``ip``."""
        status, payload = self._answer(ip, req, tree, keep)
        quiet = status in (200, 404) and tree is not None
        level = (
            logging.DEBUG
            if quiet and not self.settings.access_log
            else (logging.INFO)
        )
        if LOG.isEnabledFor(level):
            LOG.log(level, "metadata: %s %s %s %d", ip, req.method, req.target,
                    status)  # fmt: skip
        return status, payload

    def _answer(
        self,
        ip: str,
        req: http.Request,
        tree: plan.MetadataTree | None,
        keep: bool,
    ) -> tuple[int, bytes]:
        head_only = req.method == "HEAD"
        if req.method == "PUT" and self._is_token_path(req.path):
            return self._put_token(ip, req, tree, keep)
        if req.method not in ("GET", "HEAD"):
            allow = (("Allow", "GET, HEAD"),)
            return 405, http.error(405, keep_alive=keep, extra=allow)
        if tree is None:
            return 404, http.error(404, keep_alive=keep, head_only=head_only)
        if not self._token_ok(ip, req):
            return 401, http.error(401, keep_alive=keep, head_only=head_only)
        answer = tree.get(req.path, _random_seed)
        if answer is None:
            return 404, http.error(404, keep_alive=keep, head_only=head_only)
        payload = http.response(
            200,
            answer.body,
            answer.content_type,
            keep_alive=keep,
            head_only=head_only,
        )
        return 200, payload

    def _is_token_path(self, path: str) -> bool:
        if self.signer is None:
            return False
        return "/" + "/".join(plan.normalize(path)) == tokens.TOKEN_PATH

    def _token_ok(self, ip: str, req: http.Request) -> bool:
        if self.signer is None:
            return True
        token = req.headers.get(tokens.TOKEN_HEADER)
        if token is None:
            return self.settings.tokens != "required"
        return self.signer.valid(token, ip, self.now())

    def _put_token(
        self,
        ip: str,
        req: http.Request,
        tree: plan.MetadataTree | None,
        keep: bool,
    ) -> tuple[int, bytes]:
        assert self.signer is not None  # noqa: S101
        if tree is None:
            return 404, http.error(404, keep_alive=keep)
        if "x-forwarded-for" in req.headers:
            # as EC2: a token PUT relayed by a proxy is refused
            return 403, http.error(403, keep_alive=keep)
        ttl = tokens.parse_ttl(req.headers.get(tokens.TTL_HEADER))
        if ttl is None:
            return 400, http.error(400, keep_alive=keep)
        token = self.signer.issue(ip, ttl, self.now())
        extra = (("X-aws-ec2-metadata-token-ttl-seconds", str(ttl)),)
        payload = http.response(
            200, token.encode(), keep_alive=keep, extra=extra
        )
        return 200, payload


async def run(
    settings: MetadataSettings,
    lookup: Lookup,
    generation: Generation | None = None,
    started: Callable[[MetadataServer], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully."""
    server = MetadataServer(settings, lookup, generation)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # before start() logs "listening": a SIGTERM right after it must
    # not find the default action (death by signal, not exit 0)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
        if started is not None:
            started(server)
        await stop.wait()
        LOG.info("metadata: signal received, shutting down")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await server.stop()


def serve(
    settings: MetadataSettings,
    lookup: Lookup,
    generation: Generation | None = None,
) -> int:
    """Entry point for ``flatnet-metadata``: blocks; returns 0."""
    asyncio.run(run(settings, lookup, generation))
    return 0
