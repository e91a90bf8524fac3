"""The real ``flatnet-metadata`` process against a real SQLite database
made by the real ``flatnet-manage``: two instances whose fixed IPs are
in 127.0.5.0/24, so a client bound to an instance's address on the
loopback is that instance (Linux routes all of 127.0.0.0/8 to lo). Each
does cloud-init's full 28-request crawl and sees only its own data; an
unknown source gets 404; deleting an instance reaches the server's
cache through the database generation; SIGTERM exits 0; a bad
configuration exits 2 with one line. No root needed."""

from __future__ import annotations

import base64
import json
import pathlib
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests import metadata_harness as h

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "bin"
KEYS = {
    "vm1": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGH1lPc2vl9t3BzIZm9YNEZ18iN"
    "ecJ0Ei6zBm4rt83r4 alice@example",
    "vm2": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF0xB+zfOGmEIQ1J8HJqbz1Q1wZ"
    "kW0U2V3Bqk2rPj0dF bob@example",
}
ADDRESSES = {"vm1": "127.0.5.2", "vm2": "127.0.5.3"}
LISTEN = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def _manage(conf: pathlib.Path, *argv: str) -> str:
    out = subprocess.run(
        [str(BIN / "flatnet-manage"), "--config-file", str(conf), *argv],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


class Server:
    """flatnet-metadata in the foreground; its port from its log."""

    def __init__(self, conf: pathlib.Path) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "flatnet-metadata"), "--config-file", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.log: list[str] = []
        self.clients: list[h.Client] = []
        self.port = 0
        found = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                match = LISTEN.search(line)
                if match:
                    self.port = int(match[1])
                    found.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not found.wait(30):
            self.close()
            raise AssertionError("no listening line:\n" + "".join(self.log))

    def client(self, source: str) -> h.Client:
        """One connection per request, as cloud-init does."""
        made = h.Client(self.port, source, keep_alive=False)
        self.clients.append(made)
        return made

    def stop(self) -> int:
        for made in self.clients:
            made.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self.reader.join(5)
        self.close()
        return rc

    def close(self) -> None:
        for made in self.clients:
            made.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _conf(tmp_path: pathlib.Path) -> pathlib.Path:
    vendor = tmp_path / "vendor.json"
    vendor.write_text(json.dumps({"hello": "world"}))
    conf = tmp_path / "flatnet.conf"
    conf.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path}\nhost = node1\n"
        "dhcp_domain = example.org\n"
        "metadata_listen = 127.0.0.1\nmetadata_listen_port = 0\n"
        f"[api]\nvendordata_jsonfile_path = {vendor}\n"
        "[metadata]\ngeneration_interval = 0.1\n"
    )
    return conf


@pytest.fixture
def site(tmp_path) -> Iterator[tuple[pathlib.Path, Server]]:
    conf = _conf(tmp_path)
    _manage(conf, "db", "sync")
    _manage(
        conf, "network", "create", "--label", "lo", "--bridge", "br100",
        "--fixed-range-v4", "127.0.5.0/24", "--dns1", "127.0.0.53",
    )  # fmt: skip
    for name, address in ADDRESSES.items():
        (tmp_path / f"{name}.pub").write_text(KEYS[name] + "\n")
        (tmp_path / f"{name}.ud").write_bytes(f"secret of {name}\n".encode())
        out = _manage(
            conf, "instance", "create", name,
            "--user-data", str(tmp_path / f"{name}.ud"),
            "--key-name", f"key-{name}",
            "--public-key", str(tmp_path / f"{name}.pub"),
        )  # fmt: skip
        assert address in out
    server = Server(conf)
    yield conf, server
    server.close()


def _crawl(server: Server, name: str) -> tuple[dict[str, object], float]:
    client = server.client(ADDRESSES[name])
    start = time.perf_counter()
    found = h.cloud_init_crawl(client)
    took = time.perf_counter() - start
    assert [p for p, _ in client.log] == list(h.crawl_paths())
    assert all(status == 200 for _, status in client.log), client.log
    return found, took


def test_each_instance_crawls_its_own_data(site) -> None:
    conf, server = site
    for name, address in ADDRESSES.items():
        found, took = _crawl(server, name)
        print(f"{name}: 28-request crawl {took * 1000:.1f} ms")
        ec2 = found["ec2"]
        assert isinstance(ec2, dict)
        assert found["user_data"] == f"secret of {name}\n".encode()
        assert ec2["local-ipv4"] == address
        assert ec2["hostname"] == f"{name}.example.org"
        assert ec2["public-keys"] == {f"key-{name}": KEYS[name]}
        assert ec2["security-groups"] == "default"
        assert ec2["placement"] == {"availability-zone": "nova"}
        assert re.fullmatch(r"i-[0-9a-f]{8}", str(ec2["instance-id"]))
        meta = json.loads(found["meta_data.json"])  # type: ignore[arg-type]
        assert meta["hostname"] == f"{name}.example.org"
        assert meta["public_keys"] == {f"key-{name}": KEYS[name]}
        net = json.loads(found["network_data.json"])  # type: ignore[arg-type]
        assert net["networks"][0]["type"] == "ipv4_dhcp"
        assert net["services"] == [{"type": "dns", "address": "127.0.0.53"}]
        vendor = json.loads(found["vendor_data.json"])  # type: ignore[arg-type]
        assert vendor == {"hello": "world"}
    assert server.stop() == 0
    with sqlite3.connect(conf.parent / "flatnet.sqlite") as conn:
        (stored,) = conn.execute(
            "SELECT user_data FROM instances WHERE hostname = 'vm1'"
        ).fetchone()
    # stored as nova stored it: base64 text
    assert base64.b64decode(stored) == b"secret of vm1\n"


def test_unknown_source_gets_404_for_everything(site) -> None:
    _, server = site
    client = server.client("127.0.5.9")
    for path in ("/", "/latest/meta-data/", "/openstack/latest/user_data"):
        status, _, _ = client.request(path)
        assert status == 404, path
    assert server.stop() == 0


def test_a_deleted_instance_is_forgotten_through_the_generation(site) -> None:
    conf, server = site
    client = server.client(ADDRESSES["vm2"])
    assert client.get("/latest/user-data") == b"secret of vm2\n"
    _manage(conf, "instance", "delete", "vm2")
    deadline = time.monotonic() + 5
    while client.request("/latest/user-data")[0] == 200:
        assert time.monotonic() < deadline, "still served after delete"
        time.sleep(0.05)
    assert client.request("/latest/user-data")[0] == 404
    assert server.stop() == 0


def test_sigterm_exits_0_and_logs_the_stop(site) -> None:
    _, server = site
    assert server.stop() == 0
    assert any("metadata: stopped" in line for line in server.log)


@pytest.mark.parametrize("when", ["configuration:", "listening on"])
def test_sigterm_at_once_is_still_exit_0(site, when: str) -> None:
    """SIGTERM as soon as the process logs ``when`` (while starting, or
    right after it listens), three times: always exit 0, never death by
    the signal (the handler is in place before "listening" is logged)."""
    conf, server = site
    server.stop()
    for _ in range(3):
        proc = subprocess.Popen(
            [str(BIN / "flatnet-metadata"), "--config-file", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        with proc.stderr:
            for line in proc.stderr:
                if when in line:
                    proc.send_signal(signal.SIGTERM)
                    break
            proc.stderr.read()
        assert proc.wait(30) == 0


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("[metadata]\ntokens = sometimes\n", ["[metadata] tokens"]),
        ("[DEFAULT]\nmetadata_listen = here\n", ["metadata_listen"]),
        (
            "[api]\nvendordata_jsonfile_path = /nonexistent.json\n",
            ["vendordata_jsonfile_path", "No such file"],
        ),
    ],
)
def test_bad_configuration_exits_2_with_one_line(
    tmp_path, line: str, words: list[str]
) -> None:
    conf = _conf(tmp_path)
    bad = tmp_path / "bad.conf"
    bad.write_text(line)
    out = subprocess.run(
        [str(BIN / "flatnet-metadata"), "--config-file", str(conf),
         "--config-file", str(bad)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: "), out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    for word in words:
        assert word in out.stderr
