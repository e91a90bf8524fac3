"""The demo with real VMs: each instance is a libvirt domain (TCG, or KVM
where it works) booted with flatnet's ``<interface>`` XML, i.e. what a
compute driver does with the hooks API: ``NetworkAPI.
allocate_for_instance`` (returns once DHCP and the instance's filters,
iptables chain and libvirt nwfilter, are live) then ``interface_xml``.

The guest is the project's tiny busybox initramfs
(tools/build-guest.sh): it gets its lease with udhcpc, fetches its
instance-id from 169.254.169.254 (flatnet-metadata behind flatnet's
DNAT) and runs what the demo asks on its kernel command line. vm1 goes
out to the "internet" (seen SNATed), vm2 listens on tcp/80 and tcp/81
(security group web admits 80 only), vm3 pings the gateway, then
spoofs its IP and its MAC: libvirt's nwfilter drops those frames
before they reach the network host, where nft counters watch.

Layout: libvirt plugs taps into a bridge of the root namespace, so that
bridge has a unique name (also the network's bridge name), no address,
IPv6 and forwarding off, and guard rules so guest traffic reaches
neither the host's stack nor another interface (tests/functional/vm.py
TestBridge; ip_forward is left as found). Its only other port is a veth
to the "nethost" namespace, where it is flatnet's flat_interface eth2::

    [root ns] <unique bridge> -- vnet taps of vm1 vm2 vm3
                  |
                 eth2 -- [nethost] <same-named bridge> 10.0.0.1, dnsmasq,
                                   flatnet-network, flatnet-metadata
                                   eth1 --- eth0 [outside]
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import cloud
from cloud import GATEWAY, OUTSIDE_IP, PUBLIC_IP, can_connect, step
from sandbox import sh

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.functional import vm  # noqa: E402

MD_URL = "http://169.254.169.254/2009-04-04/meta-data/instance-id"
SPOOF_IP = "10.0.0.77"
SPOOF_MAC = "fa:16:3e:00:de:ad"
Row = dict[str, str]


def unavailable() -> str | None:
    """Why real VMs cannot run here (None when they can)."""
    reason = vm.missing_parts()
    if reason:
        return reason
    try:
        vm.connection()
    except vm.VmUnavailable as exc:
        return str(exc)
    try:
        vm.guest_image()  # tools/build-guest.sh: apt-get download once
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-1:]
        return f"the guest image could not be built: {' '.join(tail)}"
    return None


@dataclasses.dataclass
class FlatnetNic(vm.Nic):
    """The harness's NIC, but its element is flatnet's interface XML."""

    xml: str = ""

    def element(self) -> ET.Element:
        # our own NetworkAPI.interface_xml output, not untrusted input
        return ET.fromstring(self.xml)  # noqa: S314


def guest_commands(name: str) -> str:
    """The kernel command line of each demo guest."""
    runs = {
        "vm1": f"get,http://{OUTSIDE_IP}/",
        "vm2": "listen,80;listen,81;mark,listening",
        "vm3": f"ping,{GATEWAY};spoofip,{SPOOF_IP},{GATEWAY};"
        f"spoofmac,{SPOOF_MAC.replace(':', '-')},{GATEWAY}",
    }
    hold = " fnt.hold=60" if name == "vm2" else ""
    return f"fnt.md={MD_URL} fnt.run={runs[name]}{hold}"


class VmForm:
    """The root-namespace bridge, the guests, and their cleanup."""

    def __init__(self) -> None:
        self.conn = vm.connection()
        self.bridge = vm.TestBridge()
        self.guests: dict[str, vm.Guest] = {}
        self.filters_before = self._filters()
        self.nics: dict[str, FlatnetNic] = {}

    @property
    def bridge_name(self) -> str:
        return self.bridge.name

    def _filters(self) -> set[str]:
        return {f.name() for f in self.conn.listAllNWFilters()}

    def plug_flat_interface(self, host: str) -> None:
        step(f"root-namespace bridge {self.bridge.name} (guarded), "
             "its port eth2 in the network host")  # fmt: skip
        self.bridge.create()
        self.bridge.plug(host, "eth2")

    # --- evidence on the network host's side of the wire ---------------
    def add_counters(self, host: str, own_mac: str) -> None:
        """nft counters at the ingress of eth2 (in the sandbox): what
        left the root bridge for the network host."""
        script = f"""table netdev fndemo {{
  chain in {{ type filter hook ingress device "eth2" priority 0; policy accept;
    ip saddr {SPOOF_IP} counter comment "spoofip"
    ether saddr {SPOOF_MAC} counter comment "spoofmac"
    ether saddr {own_mac} icmp type echo-request counter comment "legit"
  }}
}}
"""
        sh(["nft", "-f", "-"], netns=host, stdin=script)

    @staticmethod
    def counters(host: str) -> dict[str, int]:
        found = json.loads(
            sh(["nft", "-j", "list", "table", "netdev", "fndemo"], netns=host)
        )
        out = {}
        for item in found["nftables"]:
            rule = item.get("rule")
            if rule:
                packets = [e["counter"]["packets"] for e in rule["expr"]
                           if "counter" in e]  # fmt: skip
                out[rule.get("comment", "?")] = packets[0]
        return out

    # --- instances ------------------------------------------------------
    def allocate(
        self, conf: pathlib.Path, names: tuple[str, ...]
    ) -> list[Row]:
        """allocate_for_instance + interface_xml, as a compute driver."""
        from flatnet import settings as flatnet_settings  # noqa: PLC0415
        from flatnet import wiring  # noqa: PLC0415

        api = wiring.network_api(flatnet_settings.load([str(conf)]))
        rows = []
        for name in names:
            started = time.monotonic()
            info = api.allocate_for_instance(name, security_groups=["web"])
            took = (time.monotonic() - started) * 1000
            vif = info[0]
            ip = vif["network"]["subnets"][0]["ips"][0]["address"]
            print(f"    {name}: allocate_for_instance -> {vif['address']} "
                  f"{ip}, DHCP and filters live in {took:.0f} ms; nwfilter "
                  f"{vif['meta']['nwfilter']}")  # fmt: skip
            self.nics[name] = FlatnetNic(
                bridge=vif["network"]["bridge"], mac=vif["address"],
                tap=vif["devname"], xml=api.interface_xml(vif),
            )  # fmt: skip
            rows.append({"instance": name, "mac": vif["address"], "ip": ip})
        return rows

    def boot(self, rows: list[Row]) -> None:
        for row in rows:
            nic = self.nics[row["instance"]]
            if row["instance"] == "vm1":
                print("    the interface XML of vm1:\n      " + nic.xml)
            started = time.monotonic()
            guest = vm.Guest(self.conn, nic, guest_commands(row["instance"]))
            self.guests[row["instance"]] = guest
            print(f"    {row['instance']}: domain {guest.name} started "
                  f"({vm.virt_type()}) in "
                  f"{time.monotonic() - started:.1f} s")  # fmt: skip

    def destroy_guests(self) -> None:
        for guest in self.guests.values():
            guest.destroy()
        self.guests.clear()

    def close(self) -> None:
        """Undefine the nwfilters that appeared during the demo (the
        instances' first: they reference nova-base), then the bridge."""
        import libvirt  # noqa: PLC0415

        for _ in range(5):
            new = sorted(
                self._filters() - self.filters_before,
                key=lambda n: not n.startswith("nova-instance-"),
            )
            for name in new:
                try:
                    self.conn.nwfilterLookupByName(name).undefine()
                except libvirt.libvirtError:
                    continue  # still referenced: next pass
            if not new:
                break
        self.bridge.close()


def _fields(line: str) -> dict[str, str]:
    """key=value pairs of a console line; ``body`` (free text) is the
    rest of the line after ``body=``."""
    head, _, body = line.partition(" body=")
    found = vm.parse_pairs(head.split(" ")[1:])
    if body:
        found["body"] = body
    return found


def watch(form: VmForm, rows: list[Row], host: str, outside: str) -> bool:
    """Follow each guest's console; fill rows; True if all is right."""
    ok = True
    for row in rows:
        guest = form.guests[row["instance"]]
        lease = _fields(guest.wait_line("LEASE", 120))
        meta = _fields(guest.wait_line("METADATA", 60))
        row["lease"] = lease.get("ip", "NONE")
        row["lease_s"] = lease.get("lease", "?")
        row["metadata"] = meta.get("body") or "NO-ANSWER"
        up = time.monotonic() - guest.started
        print(f"    {row['instance']}: LEASE {row['lease']} (uptime "
              f"{lease.get('uptime')} s), metadata {row['metadata']} "
              f"({up:.1f} s after start)")  # fmt: skip
        ok = ok and row["lease"] == row["ip"]
        ok = ok and row["metadata"].startswith("i-")
    step("filters: vm1 goes out, vm2 serves 80/81, vm3 spoofs")
    ok = _outbound(form, rows[0]) and ok
    ok = _ports(form, rows[1], outside) and ok
    return _spoof(form, rows[2], host) and ok


def _outbound(form: VmForm, row: Row) -> bool:
    got = _fields(form.guests["vm1"].wait_line("GET", 60))
    seen = (got.get("body") or "").split(" ")[1:2]
    row["filter"] = f"outbound seen as {''.join(seen) or 'NOTHING'} (SNAT)"
    print(f"    vm1: {row['filter']}")
    return seen == [PUBLIC_IP]


def _ports(form: VmForm, row: Row, outside: str) -> bool:
    form.guests["vm2"].wait_line("MARK listening", 60)
    open80 = can_connect(outside, row["ip"], 80)
    open81 = can_connect(outside, row["ip"], 81)
    row["filter"] = (
        f"from outside tcp/80 {'passes' if open80 else 'DROPPED'}, "
        f"tcp/81 {'dropped' if not open81 else 'PASSES'}"
    )
    print(f"    vm2: {row['filter']}")
    return open80 and not open81


def _spoof(form: VmForm, row: Row, host: str) -> bool:
    guest = form.guests["vm3"]
    guest.wait_line("FNT-DONE", 90)
    results = {k: v[0]["rc"] for k, v in guest.results().items()}
    seen = form.counters(host)
    row["filter"] = (
        f"spoofed IP {SPOOF_IP}: {seen['spoofip']} pkts, spoofed MAC: "
        f"{seen['spoofmac']} pkts -> dropped; own ping {seen['legit']} pkts"
    )
    print(f"    vm3: ping rc={results.get('ping')}, spoofip rc="
          f"{results.get('spoofip')}, spoofmac rc={results.get('spoofmac')}"
          f"; at the network host: {row['filter']}")  # fmt: skip
    return (
        results.get("ping") == "0"
        and seen["legit"] > 0
        and seen["spoofip"] == 0
        and seen["spoofmac"] == 0
    )


def run(
    form: VmForm, conf: pathlib.Path, host: str, outside: str
) -> tuple[bool, list[Row]]:
    step("compute driver: allocate_for_instance, then boot with "
         "interface_xml (flatnet's <interface> + nwfilter)")  # fmt: skip
    rows = form.allocate(conf, ("vm1", "vm2", "vm3"))
    form.add_counters(host, rows[2]["mac"])
    cloud.serve(outside, OUTSIDE_IP, 80)
    form.boot(rows)
    step("guests: DHCP lease, then instance-id from 169.254.169.254")
    return watch(form, rows, host, outside), rows
