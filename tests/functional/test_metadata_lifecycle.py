"""The metadata server's tokens, lookup cache, failures and shutdown, over
real TCP on loopback (127.0.0.2 is vm1, 127.0.0.3 is vm2)."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from flatnet.service.metadata_cache import CacheSettings
from tests import metadata_harness as h

VM1, VM2, NOBODY = "127.0.0.2", "127.0.0.3", "127.0.0.9"
ROOT = pathlib.Path(__file__).resolve().parents[2]
TTL = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
ID = "/latest/meta-data/instance-id"


def _token(client: h.Client, headers: dict[str, str] | None = None):
    return client.request(
        "/latest/api/token", "PUT", TTL if headers is None else headers
    )


def test_required_tokens_flow():
    srv = h.ServerThread(h.settings(tokens="required"))
    try:
        vm1, vm2 = srv.client(VM1), srv.client(VM2)
        assert vm1.request(ID)[0] == 401
        assert vm1.request("/openstack/latest/meta_data.json")[0] == 401
        status, token, resp = _token(vm1)
        assert status == 200
        assert resp.getheader("X-aws-ec2-metadata-token-ttl-seconds") == "60"
        good = {"X-aws-ec2-metadata-token": token.decode()}
        assert vm1.request(ID, headers=good)[:2] == (200, b"i-00000001")
        # the token is bound to vm1's source address
        assert vm2.request(ID, headers=good)[0] == 401
        bad = {"X-aws-ec2-metadata-token": token.decode()[:-2] + "AA"}
        assert vm1.request(ID, headers=bad)[0] == 401
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 400),
        ({"X-aws-ec2-metadata-token-ttl-seconds": "0"}, 400),
        ({"X-aws-ec2-metadata-token-ttl-seconds": "21601"}, 400),
        ({"X-aws-ec2-metadata-token-ttl-seconds": "abc"}, 400),
        ({**TTL, "X-Forwarded-For": "10.0.0.1"}, 403),
    ],
)
def test_token_put_refusals(headers, status):
    srv = h.ServerThread(h.settings(tokens="required"))
    try:
        assert _token(srv.client(VM1), headers)[0] == status
        assert _token(srv.client(NOBODY))[0] == 404
    finally:
        srv.stop()


def test_optional_tokens_serve_without_and_refuse_bad_ones():
    srv = h.ServerThread(h.settings(tokens="optional"))
    try:
        vm1 = srv.client(VM1)
        assert vm1.request(ID)[:2] == (200, b"i-00000001")
        bad = {"X-aws-ec2-metadata-token": "123.abc"}
        assert vm1.request(ID, headers=bad)[0] == 401
        token = _token(vm1)[1].decode()
        ok = {"X-aws-ec2-metadata-token": token}
        assert vm1.request(ID, headers=ok)[0] == 200
    finally:
        srv.stop()


def test_disabled_tokens_put_is_405():
    srv = h.ServerThread(h.settings(tokens="disabled"))
    try:
        assert _token(srv.client(VM1))[0] == 405
    finally:
        srv.stop()


class CountingLookup:
    """A lookup over a mutable table, slow on demand, counting calls."""

    def __init__(self) -> None:
        self.table = dict(h.INSTANCES)
        self.calls = 0
        self.delay = 0.0
        self.fail = False
        self.generation = 0

    def __call__(self, ip: str):
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("database is down")
        return self.table.get(ip)


def test_lookup_failure_is_500_and_not_cached():
    lookup = CountingLookup()
    lookup.fail = True
    srv = h.ServerThread(h.settings(), lookup)
    try:
        vm1 = srv.client(VM1)
        assert vm1.request(ID)[0] == 500
        lookup.fail = False
        assert vm1.request(ID)[:2] == (200, b"i-00000001")
    finally:
        srv.stop()


def test_one_lookup_serves_a_burst_from_one_instance():
    lookup = CountingLookup()
    lookup.delay = 0.3
    srv = h.ServerThread(h.settings(), lookup)
    try:
        results = []

        def fetch() -> None:
            results.append(srv.client(VM1, keep_alive=False).get(ID))

        threads = [threading.Thread(target=fetch) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == [b"i-00000001"] * 20
        assert lookup.calls == 1
    finally:
        srv.stop()


def test_generation_change_invalidates_the_cache():
    lookup = CountingLookup()
    cache = CacheSettings(ttl=3600, negative_ttl=3600)
    srv = h.ServerThread(
        h.settings(cache=cache, generation_interval=0.05),
        lookup,
        generation=lambda: lookup.generation,
    )
    try:
        nobody = srv.client(NOBODY)
        assert nobody.request(ID)[0] == 404  # cached as "nobody"
        lookup.table[NOBODY] = h.vm(9, NOBODY)
        time.sleep(0.3)
        assert nobody.request(ID)[0] == 404  # still cached
        lookup.generation += 1  # the database changed
        deadline = time.monotonic() + 5
        while nobody.request(ID)[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert nobody.get(ID) == b"i-00000009"
    finally:
        srv.stop()


def test_positive_entries_expire_after_ttl():
    lookup = CountingLookup()
    srv = h.ServerThread(
        h.settings(cache=CacheSettings(ttl=0.2, negative_ttl=0.2)), lookup
    )
    try:
        vm1 = srv.client(VM1)
        vm1.get(ID)
        vm1.get(ID)
        assert lookup.calls == 1
        del lookup.table[VM1]  # instance deleted, nobody told us
        time.sleep(0.3)
        assert vm1.request(ID)[0] == 404
    finally:
        srv.stop()


SERVE = textwrap.dedent(
    """
    import logging, sys, time
    from flatnet.service import metadata_server
    from tests import metadata_harness as h

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    def slow_lookup(ip):
        time.sleep(1.0)
        return h.lookup(ip)

    settings = metadata_server.MetadataSettings(
        listen_host="127.0.0.1", listen_port=int(sys.argv[1]))
    sys.exit(metadata_server.serve(settings, slow_lookup))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


def test_sigterm_finishes_requests_in_flight_then_exits_0():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        _wait_listening(port)
        idle = socket.create_connection(("127.0.0.1", port))
        client = h.Client(port, VM1)
        answer: list[bytes] = []
        fetch = threading.Thread(target=lambda: answer.append(client.get(ID)))
        fetch.start()
        time.sleep(0.3)  # the request is now waiting on the slow lookup
        proc.send_signal(signal.SIGTERM)
        fetch.join(10)
        assert answer == [b"i-00000001"]
        assert proc.wait(10) == 0
        assert idle.recv(10) == b""  # the idle connection was closed
        idle.close()
        client.close()
        _, err = proc.communicate()
        assert "shutting down" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
