"""Shared by the metadata tests: two instances, a server in a thread, and
a crawler that requests exactly what cloud-init's OpenStack datasource
requests (cloud-init 22.4.2: cloudinit/sources/DataSourceOpenStack.py
wait_for_metadata_service, cloudinit/sources/helpers/openstack.py
MetadataReader.read_v2, cloudinit/sources/helpers/ec2.py
MetadataMaterializer)."""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Callable, Iterator
from typing import Any

from flatnet.plan import metadata as plan
from flatnet.service import metadata_server

VM1_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 alice@example"
VM2_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey2 bob@example"


def vm(n: int, ip: str, **overrides: Any) -> plan.InstanceMetadata:
    """Instance ``vm<n>`` whose fixed address is ``ip``."""
    values: dict[str, Any] = {
        "uuid": f"00000000-0000-4000-8000-00000000000{n}",
        "ec2_id": plan.ec2_instance_id(n),
        "hostname": f"vm{n}",
        "fixed_ip": ip,
        "reservation_id": f"r-0000000{n}",
        "display_name": f"vm{n}",
        "project_id": "demo",
        "public_keys": {f"key{n}": VM1_KEY if n == 1 else VM2_KEY},
        "user_data": f"#!/bin/sh\necho secret-of-vm{n}\n".encode(),
        "vifs": (
            plan.MetadataVif(
                vif_id=f"11111111-0000-4000-8000-00000000000{n}",
                mac=f"fa:16:3e:00:00:0{n}",
                network_id="22222222-0000-4000-8000-000000000001",
                address=ip,
                netmask="255.0.0.0",
                gateway="127.0.0.1",
                dns=("127.0.0.1",),
            ),
        ),
    }
    values.update(overrides)
    return plan.InstanceMetadata(**values)


INSTANCES = {"127.0.0.2": vm(1, "127.0.0.2"), "127.0.0.3": vm(2, "127.0.0.3")}


def lookup(ip: str) -> plan.InstanceMetadata | None:
    return INSTANCES.get(ip)


class ServerThread:
    """A MetadataServer on 127.0.0.1:<free port> in its own loop/thread."""

    def __init__(
        self,
        settings: metadata_server.MetadataSettings,
        lookup_fn: Callable[[str], plan.InstanceMetadata | None] = lookup,
        generation: Callable[[], int] | None = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = metadata_server.MetadataServer(
            settings, lookup_fn, generation
        )
        self.thread = threading.Thread(target=self.loop.run_forever)
        self.thread.start()
        self.call(self.server.start())
        self.port = self.server.port
        self.clients: list[Client] = []

    def client(self, source: str, keep_alive: bool = True) -> Client:
        """A client from ``source``, closed by ``stop()``."""
        made = Client(self.port, source, keep_alive)
        self.clients.append(made)
        return made

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        for made in self.clients:
            made.close()
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def settings(**kw: Any) -> metadata_server.MetadataSettings:
    kw.setdefault("listen_host", "127.0.0.1")
    kw.setdefault("listen_port", 0)
    return metadata_server.MetadataSettings(**kw)


class Client:
    """A keep-alive HTTP client whose source address is ``source``."""

    def __init__(self, port: int, source: str, keep_alive: bool = True):
        self.port = port
        self.source = source
        self.keep_alive = keep_alive
        self.conn: http.client.HTTPConnection | None = None
        self.log: list[tuple[str, int]] = []

    def request(
        self,
        path: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        if self.conn is None or not self.keep_alive:
            self.close()
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=10,
                source_address=(self.source, 0),
            )  # fmt: skip
        self.conn.request(method, path, headers=headers or {})
        resp = self.conn.getresponse()
        body = resp.read()
        self.log.append((path, resp.status))
        if resp.will_close:
            self.close()
        return resp.status, body, resp

    def get(self, path: str) -> bytes:
        status, body, _ = self.request(path)
        if status != 200:
            raise LookupError(f"{path}: {status}")
        return body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _decode_leaf(blob: bytes) -> Any:
    text = blob.decode()
    return text.splitlines() if "\n" in text else text


def _materialize(client: Client, listing: bytes, base: str) -> dict[str, Any]:
    leaves: dict[str, str] = {}
    children: list[str] = []
    for line in listing.decode().splitlines():
        field = line.strip()
        name = field.rstrip("/")
        if not name:
            continue
        if field.endswith("/"):
            children.append(name)
            continue
        ident, sep, sub = field.partition("=")
        if sep and ident.isdigit():
            leaves[sub] = f"{ident}/openssh-key"
        else:
            leaves[name] = name
    result: dict[str, Any] = {}
    for child in children:
        url = f"{base}{child}/"
        result[child] = _materialize(client, client.get(url), url)
    for field, resource in leaves.items():
        result[field] = _decode_leaf(client.get(base + resource))
    return result


def cloud_init_crawl(client: Client) -> dict[str, Any]:
    """What cloud-init 22.4.2's OpenStack datasource fetches, in order."""
    client.get("/openstack")  # wait_for_metadata_service
    versions = client.get("/openstack").decode().split()
    known = [
        "2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15",
        "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27",
    ]  # fmt: skip
    version = next((v for v in reversed(known) if v in versions), "latest")
    found: dict[str, Any] = {"version": version}
    for name in ("meta_data.json", "user_data", "vendor_data.json",
                 "vendor_data2.json", "network_data.json"):  # fmt: skip
        status, body, _ = client.request(f"/openstack/{version}/{name}")
        if status == 200:
            found[name] = body
    listing = client.get("/latest/meta-data/")
    found["ec2"] = _materialize(client, listing, "/latest/meta-data/")
    return found


def crawl_paths(version: str = "2017-02-22") -> Iterator[str]:
    """The 28 paths of a crawl of vm1 or vm2, in cloud-init's order."""
    yield from ("/openstack", "/openstack")
    for name in ("meta_data.json", "user_data", "vendor_data.json",
                 "vendor_data2.json", "network_data.json"):  # fmt: skip
        yield f"/openstack/{version}/{name}"
    md = "/latest/meta-data/"
    yield md
    for child, leaves in (
        ("block-device-mapping/", ["ami", "root"]),
        ("placement/", ["availability-zone"]),
        ("public-keys/", ["0/openssh-key"]),
    ):
        yield md + child
        yield from (md + child + leaf for leaf in leaves)
    for leaf in ("ami-id", "ami-launch-index", "ami-manifest-path",
                 "hostname", "instance-action", "instance-id",
                 "instance-type", "local-hostname", "local-ipv4",
                 "public-hostname", "public-ipv4", "reservation-id",
                 "security-groups"):  # fmt: skip
        yield md + leaf
