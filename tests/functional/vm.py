"""Real VMs for tests: transient libvirt domains on a guarded test bridge.

The guest is the tiny busybox initramfs of ``tools/build-guest.sh`` (see
doc/testing-vms.md); it prints machine-readable lines on its serial
console, which :class:`Guest` reads from a file. Everything this module
creates carries the test process's pid, so :func:`sweep_leftovers` can
remove what a killed run left behind:

* domains ``fntvm-<pid>-<n>`` (transient: gone when destroyed),
* bridges with the alias ``flatnet-test pid=<pid>`` in the root
  namespace (libvirt only plugs taps into bridges there), their guard
  rules (iptables comment ``flatnet-test pid=<pid>``).

A test bridge has no IP address and no IPv6; its guards drop whatever
arrives from it for the root namespace's own stack (INPUT) or would be
routed elsewhere (FORWARD, and the bridge's own ``forwarding=0``), so
guest traffic stays on the bridge whatever ip_forward is (it is kept as
found). Peers of the guests live in network namespaces attached to the
bridge by veth pairs (see :mod:`tests.functional.vm_site`).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import itertools
import os
import pathlib
import platform
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

from tests.functional import netns

ROOT = pathlib.Path(__file__).resolve().parents[2]
URI = "qemu:///system"
TAG = "flatnet-test"
_counter = itertools.count()


class VmUnavailable(Exception):
    """This machine cannot run the VM tests; the message says why."""


def _pid_alive(pid: int) -> bool:
    return pathlib.Path(f"/proc/{pid}").exists()


# --- the machine --------------------------------------------------------
def missing_parts() -> str | None:
    """Why VM tests cannot run here (None when they can)."""
    if os.geteuid() != 0:
        return "VM tests need root"
    if platform.machine() != "x86_64":
        return f"the test guest is x86_64; this is {platform.machine()}"
    for tool in ("libvirtd", "virtlogd", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make deps installs it)"
    try:
        import libvirt  # noqa: F401, PLC0415
    except ImportError:
        return "libvirt-python is not installed (pip install -e '.[libvirt]')"
    return None


@functools.cache
def connection():  # -> libvirt.virConnect
    """A connection to qemu:///system; starts libvirtd (and virtlogd)
    with tools/libvirt-up.sh when it does not answer. Raises
    VmUnavailable when qemu/libvirt are missing, RuntimeError when they
    are installed but do not work (a failure, not a skip)."""
    reason = missing_parts()
    if reason:
        raise VmUnavailable(reason)
    import libvirt  # noqa: PLC0415

    up = subprocess.run(
        ["bash", str(ROOT / "tools/libvirt-up.sh"), "up"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if up.returncode == 3:
        raise VmUnavailable(up.stderr.strip())
    if up.returncode != 0:
        raise RuntimeError(f"libvirt-up.sh failed: {up.stderr.strip()}")
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(URI)
    atexit.register(conn.close)  # before libvirt's module is torn down
    sweep_leftovers(conn)
    return conn


def virt_type() -> str:
    """'kvm' where hardware virtualisation works, else 'qemu' (TCG).

    /dev/kvm backed by kvm_pvm (no VMX/SVM) only runs PVM-enlightened
    guest kernels; a stock Debian kernel crawls there, so use TCG.
    """
    if os.environ.get("FLATNET_VM_VIRT") in ("kvm", "qemu"):
        return os.environ["FLATNET_VM_VIRT"]
    flags = pathlib.Path("/proc/cpuinfo").read_text()
    if (
        pathlib.Path("/dev/kvm").exists()
        and re.search(r"\b(vmx|svm)\b", flags)
        and not pathlib.Path("/sys/module/kvm_pvm").exists()
    ):
        return "kvm"
    return "qemu"


@dataclasses.dataclass(frozen=True)
class GuestImage:
    kernel: pathlib.Path
    initrd: pathlib.Path


@functools.cache
def guest_image() -> GuestImage:
    """Build (or reuse) the guest and copy it where qemu can read it
    (libvirt's qemu user cannot traverse every work tree)."""
    cache = ROOT / ".cache" / "guest"
    subprocess.run(
        ["bash", str(ROOT / "tools/build-guest.sh"), str(cache)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    shared = pathlib.Path(tempfile.mkdtemp(prefix=f"fntguest{os.getpid()}-"))
    shared.chmod(0o755)
    atexit.register(shutil.rmtree, shared, ignore_errors=True)
    for name in ("vmlinuz", "initramfs.cpio.gz"):
        shutil.copy(cache / name, shared / name)
        (shared / name).chmod(0o644)
    return GuestImage(shared / "vmlinuz", shared / "initramfs.cpio.gz")


# --- test bridge --------------------------------------------------------
def _guard_rules(bridge: str) -> list[list[str]]:
    comment = ["-m", "comment", "--comment", f"{TAG} pid={os.getpid()}"]
    return [
        ["INPUT", "-i", bridge, *comment, "-j", "DROP"],
        ["FORWARD", "-i", bridge, "!", "-o", bridge, *comment, "-j", "DROP"],
    ]


class TestBridge:
    """A bridge in the root namespace, unique, guarded, removed after."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.name = netns.unique_name("vb")
        self.guards = _guard_rules(self.name)
        self.created = False

    def create(self) -> TestBridge:
        run = netns.run
        run(["ip", "link", "add", self.name, "type", "bridge",
             "stp_state", "0", "forward_delay", "0"])  # fmt: skip
        self.created = True
        run(["ip", "link", "set", self.name, "alias",
             f"{TAG} pid={os.getpid()}"])  # fmt: skip
        for key in (
            "ipv6.conf.{}.disable_ipv6=1",
            "ipv4.conf.{}.forwarding=0",
        ):
            run(["sysctl", "-qw", "net." + key.format(self.name)])
        for rule in self.guards:
            run(["iptables", "-w", "-I", *rule])
        run(["ip", "link", "set", self.name, "up"])
        return self

    def plug(self, ns: str, ifname: str, mac: str | None = None) -> None:
        """A veth pair: ``ifname`` in ``ns``, its peer a bridge port."""
        port = netns.unique_name("vp")
        netns.run(["ip", "link", "add", port, "type", "veth", "peer",
                   "name", ifname, "netns", ns])  # fmt: skip
        netns.run(["ip", "link", "set", port, "master", self.name, "up"])
        if mac:
            netns.run(["ip", "link", "set", ifname, "address", mac], ns)
        netns.run(["ip", "link", "set", ifname, "up"], ns)

    def close(self) -> None:
        if not self.created:
            return
        for rule in self.guards:
            netns.run(["iptables", "-w", "-D", *rule], check=False)
        netns.run(["ip", "link", "del", self.name], check=False)
        self.created = False


# --- domains ------------------------------------------------------------
@dataclasses.dataclass
class Nic:
    """The ``<interface type='bridge'>`` of a test domain."""

    bridge: str
    mac: str
    filterref: ET.Element | None = None
    tap: str = dataclasses.field(
        default_factory=lambda: netns.unique_name("vt")
    )

    def element(self) -> ET.Element:
        iface = ET.Element("interface", type="bridge")
        ET.SubElement(iface, "source", bridge=self.bridge)
        ET.SubElement(iface, "target", dev=self.tap)
        ET.SubElement(iface, "mac", address=self.mac)
        ET.SubElement(iface, "model", type="virtio")
        if self.filterref is not None:
            iface.append(self.filterref)
        return iface


def domain_xml(
    name: str, nic: Nic, cmdline: str, console: pathlib.Path
) -> str:
    image = guest_image()
    dom = ET.Element("domain", type=virt_type())
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "memory", unit="MiB").text = "192"
    ET.SubElement(dom, "vcpu").text = "1"
    os_ = ET.SubElement(dom, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_, "kernel").text = str(image.kernel)
    ET.SubElement(os_, "initrd").text = str(image.initrd)
    ET.SubElement(
        os_, "cmdline"
    ).text = f"console=ttyS0 quiet panic=-1 {cmdline}"
    ET.SubElement(ET.SubElement(dom, "features"), "acpi")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        ET.SubElement(dom, event).text = "destroy"
    devices = ET.SubElement(dom, "devices")
    devices.append(nic.element())
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=str(console))
    ET.SubElement(serial, "target", port="0")
    ET.SubElement(ET.SubElement(devices, "video"), "model", type="none")
    ET.SubElement(devices, "memballoon", model="none")
    return ET.tostring(dom, encoding="unicode")


class Guest:
    """A running transient domain and its serial console."""

    def __init__(
        self, conn, nic: Nic, cmdline: str = "", paused: bool = False
    ) -> None:
        self.conn = conn
        self.nic = nic
        self.name = f"fntvm-{os.getpid()}-{next(_counter)}"
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="fntvm"))
        self.dir.chmod(0o755)
        self.console = self.dir / "console.log"
        self.xml = domain_xml(self.name, nic, cmdline, self.console)
        self.started = time.monotonic()
        self.final_lines: list[str] | None = None  # kept after destroy
        # a paused domain has its tap and nwfilter binding but runs nothing
        self.dom = conn.createXML(self.xml, 1 if paused else 0)

    def lines(self) -> list[str]:
        if self.final_lines is not None:
            return self.final_lines
        if not self.console.exists():
            return []
        text = self.console.read_bytes().decode("utf-8", "replace")
        # only complete lines: the last one may still be being written
        # (a LEASE line read half-way lacks its lease= and uptime=)
        done = text.split("\n")[:-1] if self.running() else text.split("\n")
        return [line.strip("\r") for line in done]

    def wait_line(self, prefix: str, timeout: float = 120.0) -> str:
        """The first console line starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if line.startswith(prefix):
                    return line
            if not self.running() and not any(
                ln.startswith(prefix) for ln in self.lines()
            ):
                break
            time.sleep(0.05)
        raise AssertionError(
            f"{self.name}: no {prefix!r} line; console:\n"
            + "\n".join(self.lines()[-40:])
        )

    def running(self) -> bool:
        import libvirt  # noqa: PLC0415

        try:
            return bool(self.conn.lookupByName(self.name).isActive())
        except libvirt.libvirtError:
            return False

    def results(self) -> dict[str, list[dict[str, str]]]:
        """RESULT lines by command: [{'rc': '0', 'args': ...}, ...]."""
        found: dict[str, list[dict[str, str]]] = {}
        for line in self.lines():
            if line.startswith("RESULT "):
                _, name, *pairs = line.split(" ")
                found.setdefault(name, []).append(parse_pairs(pairs))
        return found

    def destroy(self) -> None:
        """Destroy (if running), then wait until libvirt has removed the
        domain and the tap's nwfilter binding (teardown is async)."""
        import libvirt  # noqa: PLC0415

        with contextlib.suppress(libvirt.libvirtError):
            self.conn.lookupByName(self.name).destroy()
        wait_until(lambda: not self.running(), 30, f"{self.name} gone")
        wait_until(
            lambda: self.nic.tap not in binding_ports(self.conn),
            30,
            f"nwfilter binding of {self.nic.tap} gone",
        )
        if self.final_lines is None:
            self.final_lines = self.lines()
        shutil.rmtree(self.dir, ignore_errors=True)


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs if "=" in p)


def binding_ports(conn) -> set[str]:
    return {b.portDev() for b in conn.listAllNWFilterBindings()}


def wait_until(probe: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def booted(
    conn, nic: Nic, cmdline: str = "", paused: bool = False
) -> Iterator[Guest]:
    """A guest for the duration of the block; destroyed after, also on
    failure or Ctrl-C."""
    guest = Guest(conn, nic, cmdline, paused)
    try:
        yield guest
    finally:
        guest.destroy()


# --- leftovers of killed runs -------------------------------------------
def sweep_leftovers(conn) -> None:
    """Remove domains, bridges and guards of test processes that died."""
    import libvirt  # noqa: PLC0415

    for dom in conn.listAllDomains():
        found = re.match(r"fntvm-(\d+)-\d+$", dom.name())
        if found and not _pid_alive(int(found.group(1))):
            with contextlib.suppress(libvirt.libvirtError):
                dom.destroy()
    out = netns.run(["ip", "-o", "link", "show", "type", "bridge"]).stdout
    for line in out.splitlines():
        found = re.search(rf"^\d+: ([^:@]+).*alias {TAG} pid=(\d+)", line)
        if found and not _pid_alive(int(found.group(2))):
            netns.run(["ip", "link", "del", found.group(1)], check=False)
    for chain in ("INPUT", "FORWARD"):
        rules = netns.run(["iptables", "-w", "-S", chain]).stdout
        for rule in rules.splitlines():
            found = re.search(rf'"{TAG} pid=(\d+)"', rule)
            if found and not _pid_alive(int(found.group(1))):
                netns.run(
                    ["iptables", "-w", "-D", *_unquote(rule)], check=False
                )


def _unquote(rule: str) -> list[str]:
    """``-A CHAIN ... --comment "a b" ...`` as argv without -A."""
    import shlex  # noqa: PLC0415

    return shlex.split(rule)[1:]
