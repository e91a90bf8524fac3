"""The metadata server over real TCP on loopback: instances are told apart
by their source address (127.0.0.2 is vm1, 127.0.0.3 is vm2; 127.0.0.9 is
nobody), as the compute firewall's anti-spoofing makes a guest's source
address trustworthy on the flat network. No root needed."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from flatnet.plan import metadata as plan
from tests import metadata_harness as h

VM1, VM2, NOBODY = "127.0.0.2", "127.0.0.3", "127.0.0.9"


@pytest.fixture
def server() -> Iterator[h.ServerThread]:
    srv = h.ServerThread(h.settings())
    yield srv
    srv.stop()


def _raw(port: int, source: str, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` and read until the server closes (or ``wait``)."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=wait, source_address=(source, 0)
    ) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            chunks.append(b"<timeout>")
        return b"".join(chunks)


def test_cloud_init_crawl_is_28_requests_all_answered(server):
    client = server.client(VM1)
    found = h.cloud_init_crawl(client)
    assert client.log == [(p, 200) for p in h.crawl_paths()]
    assert len(client.log) == 28
    ec2 = found["ec2"]
    assert ec2["instance-id"] == "i-00000001"
    assert ec2["local-ipv4"] == VM1
    assert ec2["hostname"] == "vm1.novalocal"
    assert ec2["public-keys"] == {"key1": h.VM1_KEY}
    assert ec2["block-device-mapping"] == {"ami": "vda", "root": "/dev/vda"}
    assert ec2["placement"] == {"availability-zone": "nova"}
    assert found["user_data"] == b"#!/bin/sh\necho secret-of-vm1\n"
    meta = json.loads(found["meta_data.json"])
    assert meta["uuid"] == "00000000-0000-4000-8000-000000000001"
    assert meta["public_keys"] == {"key1": h.VM1_KEY}
    assert len(plan_b64(meta["random_seed"])) == 512
    net = json.loads(found["network_data.json"])
    assert net["links"][0]["ethernet_mac_address"] == "fa:16:3e:00:00:01"
    assert net["networks"][0]["type"] == "ipv4_dhcp"


def plan_b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_cirros_style_2009_04_04_instance_id(server):
    client = server.client(VM2, keep_alive=False)
    assert client.get("/2009-04-04/meta-data/instance-id") == b"i-00000002"
    assert client.get("/2009-04-04/user-data").endswith(b"secret-of-vm2\n")


def test_each_instance_sees_only_its_own_data(server):
    results: dict[str, dict] = {}

    def crawl(source: str) -> None:
        for _ in range(5):
            results[source] = h.cloud_init_crawl(server.client(source))

    threads = [threading.Thread(target=crawl, args=(s,)) for s in (VM1, VM2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    one, two = results[VM1], results[VM2]
    assert one["ec2"]["instance-id"] == "i-00000001"
    assert two["ec2"]["instance-id"] == "i-00000002"
    assert b"vm2" not in one["user_data"] + one["meta_data.json"]
    assert b"vm1" not in two["user_data"] + two["meta_data.json"]
    assert two["ec2"]["public-keys"] == {"key2": h.VM2_KEY}


@pytest.mark.parametrize(
    "header",
    ["X-Forwarded-For", "X-Real-IP", "X-Instance-ID", "Forwarded"],
)
def test_headers_a_guest_sets_are_never_used_to_identify(server, header):
    value = VM2 if header != "X-Instance-ID" else h.INSTANCES[VM2].uuid
    if header == "Forwarded":
        value = f"for={VM2}"
    vm1 = server.client(VM1)
    status, body, _ = vm1.request(
        "/latest/meta-data/instance-id", headers={header: value}
    )
    assert (status, body) == (200, b"i-00000001")
    nobody = server.client(NOBODY)
    status, body, _ = nobody.request(
        "/latest/user-data", headers={header: VM1}
    )
    assert status == 404
    assert b"secret" not in body


@pytest.mark.parametrize(
    "path", ["/", "/latest/meta-data/instance-id", "/openstack", "/x"]
)
def test_unknown_source_gets_404_everywhere(server, path):
    status, body, _ = server.client(NOBODY).request(path)
    assert status == 404
    assert body == b"404 Not Found\n"


def test_unknown_path_is_404_and_keeps_the_connection(server):
    client = server.client(VM1)
    assert client.request("/latest/meta-data/nope")[0] == 404
    sock = client.conn.sock
    assert client.request("/latest/meta-data/instance-id")[0] == 200
    assert client.conn.sock is sock  # same TCP connection: keep-alive


@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head(server, method):
    status, _, resp = server.client(VM1).request("/latest", method)
    assert status == 405
    assert resp.getheader("Allow") == "GET, HEAD"


def test_head_has_get_headers_and_no_body(server):
    client = server.client(VM1)
    status, body, resp = client.request("/latest/user-data", "HEAD")
    assert (status, body) == (200, b"")
    assert resp.getheader("Content-Length") == str(
        len(h.INSTANCES[VM1].user_data)
    )
    assert client.get("/latest/meta-data/instance-id") == b"i-00000001"


def test_content_types(server):
    client = server.client(VM1)
    for path, ctype in [
        ("/openstack/latest/meta_data.json", "application/json"),
        ("/openstack/latest/vendor_data.json", "application/json"),
        ("/openstack/latest/network_data.json", plan.TEXT),
        ("/latest/meta-data/", plan.TEXT),
    ]:
        _, _, resp = client.request(path)
        assert resp.getheader("Content-Type") == ctype, path


def test_pipelined_requests_are_answered_in_order(server):
    req = b"GET /latest/meta-data/%s HTTP/1.1\r\nHost: m\r\n\r\n"
    data = req % b"instance-id" + req % b"hostname"
    data += b"GET /latest/meta-data/local-ipv4 HTTP/1.1\r\nHost: m\r\n"
    data += b"Connection: close\r\n\r\n"
    out = _raw(server.port, VM1, data)
    assert out.count(b"HTTP/1.1 200 OK") == 3
    bodies = [
        part.split(b"\r\n\r\n", 1)[1] for part in out.split(b"HTTP/")[1:]
    ]
    assert bodies == [b"i-00000001", b"vm1.novalocal", VM1.encode()]


def test_http_1_0_closes_after_the_answer(server):
    out = _raw(
        server.port, VM1, b"GET /latest/meta-data/instance-id HTTP/1.0\r\n\r\n"
    )
    assert out.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in out
    assert out.endswith(b"\r\n\r\ni-00000001")


def test_oversized_head_is_refused_with_431():
    srv = h.ServerThread(h.settings(max_head_bytes=1024))
    try:
        big = (
            b"GET / HTTP/1.1\r\nHost: m\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n"
        )
        assert _raw(srv.port, VM1, big).startswith(b"HTTP/1.1 431 ")
        # also without ever finishing the head
        assert _raw(srv.port, VM1, b"GET /" + b"a" * 2000).startswith(
            b"HTTP/1.1 431 "
        )
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: m\r\nContent-Length: 5\r\n\r\nhello", 413),
        (
            b"GET / HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n",
            413,
        ),
        (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: m\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: m\r\n\r\n", 400),
        (b"GET /\x01 HTTP/1.1\r\nHost: m\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: m\r\n folded\r\n\r\n", 400),
    ],
)
def test_malformed_requests_get_a_status_and_a_close(
    server, request_bytes, status
):
    out = _raw(server.port, VM1, request_bytes)
    assert out.startswith(b"HTTP/1.1 %d " % status)
    assert b"Connection: close" in out


def test_slowloris_head_times_out_with_408():
    srv = h.ServerThread(h.settings(header_timeout=0.5))
    try:
        with socket.create_connection(
            ("127.0.0.1", srv.port), timeout=5, source_address=(VM1, 0)
        ) as sock:
            start = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\n")
            out = b""
            for _ in range(40):  # one header byte every 0.1 s
                try:
                    sock.sendall(b"X")
                except OSError:
                    break
                time.sleep(0.1)
            sock.settimeout(2)
            try:
                while chunk := sock.recv(4096):
                    out += chunk
            except (ConnectionResetError, TimeoutError):
                pass
            elapsed = time.monotonic() - start
        assert out.startswith(b"HTTP/1.1 408 "), out
        assert elapsed < 3.0
    finally:
        srv.stop()


def test_idle_keep_alive_connection_is_closed():
    srv = h.ServerThread(h.settings(idle_timeout=0.3))
    try:
        with socket.create_connection(
            ("127.0.0.1", srv.port), timeout=3, source_address=(VM1, 0)
        ) as sock:
            start = time.monotonic()
            assert sock.recv(10) == b""  # closed by the server, no answer
            assert time.monotonic() - start < 2.0
    finally:
        srv.stop()


def test_connections_per_source_are_bounded():
    srv = h.ServerThread(h.settings(max_connections_per_ip=2))
    try:
        held = [
            socket.create_connection(
                ("127.0.0.1", srv.port), source_address=(VM1, 0)
            )
            for _ in range(2)
        ]
        time.sleep(0.2)
        assert _raw(srv.port, VM1, b"").startswith(b"HTTP/1.1 503 ")
        # another instance is not affected
        assert srv.client(VM2).get("/latest/meta-data/instance-id")
        for sock in held:
            sock.close()
    finally:
        srv.stop()
