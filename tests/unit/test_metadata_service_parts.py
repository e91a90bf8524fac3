"""The metadata server's parts: request parsing, tokens, the lookup cache
and its settings."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from flatnet.plan.metadata import MetadataTree
from flatnet.service import metadata_http as http
from flatnet.service import metadata_tokens as tokens
from flatnet.service.metadata_cache import CacheSettings, InstanceCache
from flatnet.service.metadata_conn import Connection, source_ip
from flatnet.service.metadata_server import MetadataServer, MetadataSettings
from tests import metadata_harness as h


def test_parse_head_basic():
    req = http.parse_head(
        b"GET /latest/meta-data/?x=1 HTTP/1.1\r\nHost: 169.254.169.254\r\n"
        b"X-aws-ec2-metadata-token: abc"
    )
    assert req.method == "GET"
    assert req.path == "/latest/meta-data/"
    assert req.target == "/latest/meta-data/?x=1"
    assert req.headers["x-aws-ec2-metadata-token"] == "abc"
    assert req.keep_alive


@pytest.mark.parametrize(
    ("head", "keep"),
    [
        (b"GET / HTTP/1.1\r\nHost: m\r\nConnection: close", False),
        (b"GET / HTTP/1.1\r\nHost: m\r\nConnection: Keep-Alive, x", True),
        (b"GET / HTTP/1.0", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive", True),
    ],
)
def test_keep_alive_rules(head, keep):
    assert http.parse_head(head).keep_alive is keep


def test_absolute_form_and_percent_decoding():
    req = http.parse_head(
        b"GET http://169.254.169.254/latest/meta%2Ddata/ HTTP/1.1\r\nHost: m"
    )
    assert req.path == "/latest/meta-data/"


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET / HTTP/1.1", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1", 413),
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x00", 400),
        (b"GET /%ff HTTP/1.1\r\nHost: a", 400),
        (b"GET latest HTTP/1.1\r\nHost: a", 400),
        (b"get / HTTP/1.1\r\nHost: a", 400),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 70 + b"Host: a", 431),
    ],
)
def test_bad_heads(head, status):
    with pytest.raises(http.HttpError) as err:
        http.parse_head(head)
    assert err.value.status == status


def test_response_bytes():
    assert http.response(200, b"hi") == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 2\r\n\r\nhi"
    )
    assert http.response(200, b"hi", keep_alive=False, head_only=True) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n"
    )


def test_tokens_bound_to_ip_and_expire():
    signer = tokens.TokenSigner(b"k" * 32)
    token = signer.issue("10.0.0.2", 60, now=1000.0)
    assert signer.valid(token, "10.0.0.2", now=1059.0)
    assert not signer.valid(token, "10.0.0.2", now=1060.0)
    assert not signer.valid(token, "10.0.0.3", now=1001.0)
    assert not tokens.TokenSigner(b"j" * 32).valid(token, "10.0.0.2", 1001.0)
    expiry, mac = token.split(".")
    forged = f"{int(expiry) + 1000}.{mac}"  # a longer life is not accepted
    assert not signer.valid(forged, "10.0.0.2", now=1001.0)
    for junk in ("", ".", "abc", "1.", "x.y", "9" * 20 + ".a"):
        assert not signer.valid(junk, "10.0.0.2", now=0.0)


@pytest.mark.parametrize(
    ("value", "ttl"),
    [("1", 1), ("21600", 21600), ("0", None), ("21601", None),
     ("-1", None), (" 5", None), (None, None)],
)  # fmt: skip
def test_parse_ttl(value, ttl):
    assert tokens.parse_ttl(value) == ttl


@pytest.mark.parametrize(
    ("peer", "ip"),
    [
        (("10.0.0.2", 1234), "10.0.0.2"),
        (("::ffff:10.0.0.2", 1, 0, 0), "10.0.0.2"),
        (("fd00::2", 1, 0, 0), "fd00::2"),
        (None, ""),
    ],
)
def test_source_ip(peer, ip):
    assert source_ip(peer) == ip


@pytest.mark.parametrize(
    "kw",
    [
        {"tokens": "sometimes"},
        {"listen_port": 70000},
        {"max_connections": 0},
        {"header_timeout": 0},
    ],
)
def test_settings_refuse_bad_values(kw):
    with pytest.raises(ValueError, match="metadata"):
        MetadataSettings(**kw)


def test_invalidation_during_a_lookup_does_not_store_stale_data():
    release = threading.Event()
    answers = iter([h.INSTANCES["127.0.0.2"], None])

    def lookup(ip):
        release.wait(5)
        return next(answers)

    async def scenario():
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            cache = InstanceCache(lookup, pool, CacheSettings())
            first = asyncio.ensure_future(cache.get("127.0.0.2"))
            await asyncio.sleep(0.05)
            cache.invalidate()  # the database changed mid-lookup
            release.set()
            stale = await first
            assert stale is not None  # that request still gets its answer
            assert cache.peek("127.0.0.2") == (False, None)  # not kept
            assert await cache.get("127.0.0.2") is None  # fresh lookup
            assert cache.lookups == 2

    asyncio.run(scenario())


def test_cache_is_bounded():
    async def scenario():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            cache = InstanceCache(
                lambda ip: None, pool, CacheSettings(max_entries=3)
            )
            for n in range(10):
                await cache.get(f"10.0.0.{n}")
            assert len(cache._entries) == 3
            assert cache.peek("10.0.0.9") == (True, None)

    asyncio.run(scenario())


class FakeTransport(asyncio.Transport):
    """Records writes and flow-control calls (for Connection only)."""

    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer
        self.written: list[bytes] = []
        self.reading = True
        self.closed = False

    def get_extra_info(self, name, default=None):
        return (self.peer, 40000) if name == "peername" else default

    def write(self, data) -> None:
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_a_client_that_does_not_read_stops_being_read():
    server = MetadataServer(h.settings(max_head_bytes=1024), h.lookup)
    server.cache._store("127.0.0.2", MetadataTree(h.INSTANCES["127.0.0.2"]))
    conn = Connection(server)
    transport = FakeTransport("127.0.0.2")
    conn.connection_made(transport)
    req = b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: m\r\n\r\n"
    conn.data_received(req)
    assert len(transport.written) == 1  # answered at once (cache hit)
    conn.pause_writing()  # the client's receive window is full
    for _ in range(100):
        conn.data_received(req)
    assert len(transport.written) == 1  # nothing more is produced
    assert not transport.reading  # and the socket is no longer read
    conn.resume_writing()
    assert len(transport.written) == 101  # all answered, in order
    assert transport.reading
    assert set(transport.written) == {transport.written[0]}
    server._executor.shutdown()
