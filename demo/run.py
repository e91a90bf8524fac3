"""make demo: a single-host FlatDHCP cloud in a sandbox.

1. writes a config and creates the database (``flatnet-manage db
   sync``), network "private" 10.0.0.0/24, a floating pool and security
   group "web" (tcp/80 and icmp);
2. starts flatnet-network (``flatnet_roles = network, compute``, so the
   instances' security-group chains are on) and flatnet-metadata in a
   "nethost" namespace;
3. boots three instances: real VMs through libvirt with flatnet's
   interface XML and nwfilters (demo/vm_form.py), or, with ``--no-vm``
   (``make demo NO_VM=1``) or without qemu/libvirt, network namespaces
   with busybox udhcpc and a python HTTP client (demo/ns_form.py);
4. each gets its lease by DHCP and its instance-id from
   169.254.169.254; the security group and (with VMs) a spoofing guest
   are tried on the wire;
5. prints a summary table and removes everything: namespaces, the
   root-namespace bridge and its guards, domains, nwfilters, processes,
   files; also on Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from types import FrameType

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import cloud  # noqa: E402
import ns_form  # noqa: E402
from cloud import step  # noqa: E402
from sandbox import Sandbox, sweep_dead_runs  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBVIRT_STARTED = pathlib.Path("/run/flatnet-libvirt/started")
COLUMNS = ("instance", "mac", "ip", "lease", "lease_s", "metadata", "filter")


def print_table(rows: list[dict[str, str]]) -> None:
    print(
        f"{'instance':<9} {'MAC':<18} {'fixed IP':<10} {'DHCP lease':<10} "
        f"{'lease s':>7} {'metadata':<11} filter result"
    )
    for row in rows:
        r = {k: row.get(k, "-") for k in COLUMNS}
        print(
            f"{r['instance']:<9} {r['mac']:<18} {r['ip']:<10} "
            f"{r['lease']:<10} {r['lease_s']:>7} {r['metadata']:<11} "
            f"{r['filter']}"
        )


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def choose_form(no_vm: bool) -> object | None:
    """A vm_form.VmForm, or None for the namespace form (saying why)."""
    if no_vm:
        step("NO_VM: instances are network namespaces")
        return None
    import vm_form  # noqa: PLC0415 (imports the VM harness)

    reason = vm_form.unavailable()
    if reason:
        step(f"no VMs on this machine ({reason}): instances are network "
             "namespaces instead")  # fmt: skip
        return None
    return vm_form.VmForm()


def deploy(
    box: Sandbox, form: object | None, workdir: pathlib.Path
) -> tuple[pathlib.Path, str, str]:
    bridge = getattr(form, "bridge_name", ns_form.BRIDGE)
    step(f"sandbox {box.tag}: config and database in {workdir}")
    conf = cloud.write_config(workdir, bridge, nwfilter=form is not None)
    cloud.create_network(conf, bridge)
    cloud.create_web_group(conf)
    step("network host namespace: flatnet-network (network, compute) "
         "and flatnet-metadata")  # fmt: skip
    host, outside = cloud.build_host(box)
    if form is None:
        ns_form.plug_flat_interface(box, host)
    else:
        form.plug_flat_interface(host)  # type: ignore[attr-defined]
    return conf, host, outside


def demo(box: Sandbox, form: object | None, workdir: pathlib.Path,
         procs: list[subprocess.Popen[bytes]]) -> bool:  # fmt: skip
    conf, host, outside = deploy(box, form, workdir)
    procs.extend(cloud.start_services(host, conf, workdir))
    if form is None:
        ok, rows = ns_form.run(box, conf, host, outside)
    else:
        import vm_form  # noqa: PLC0415

        ok, rows = vm_form.run(form, conf, host, outside)  # type: ignore[arg-type]
    step("result")
    print_table(rows)
    return ok


def cleanup(
    box: Sandbox,
    form: object | None,
    procs: list[subprocess.Popen[bytes]],
    workdir: pathlib.Path,
) -> None:
    """Everything the demo made goes, in dependency order; a second
    Ctrl-C does not cut this short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if form is not None:
        form.destroy_guests()  # type: ignore[attr-defined]
    cloud.stop_services(procs)
    if form is not None:
        form.close()  # type: ignore[attr-defined]
    box.close()
    cloud.show_log_on_failure(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"sandbox {box.tag} and {workdir} removed", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--no-vm",
        action="store_true",
        help="namespaces instead of VMs (also NO_VM=1)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make demo needs root (network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    had_libvirt = LIBVIRT_STARTED.exists()
    for gone in sweep_dead_runs():
        print(f"removed {gone}, left by a killed demo")
    box = Sandbox(f"d{os.getpid()}")
    workdir = pathlib.Path(
        tempfile.mkdtemp(prefix=f"flatnet-demo-{os.getpid()}-")
    )
    workdir.chmod(0o755)  # dnsmasq drops to nobody and reads files here
    procs: list[subprocess.Popen[bytes]] = []
    form = None
    ok = False
    try:
        form = choose_form(args.no_vm or bool(os.environ.get("NO_VM")))
        ok = demo(box, form, workdir, procs)
    except KeyboardInterrupt as exc:
        print(
            f"demo interrupted ({str(exc) or 'SIGINT'}); cleaning up",
            flush=True,
        )
        ok = False
    finally:
        cleanup(box, form, procs, workdir)
        if not had_libvirt and LIBVIRT_STARTED.exists():
            subprocess.run(["bash", str(ROOT / "tools/libvirt-up.sh"), "down"],
                           check=False, capture_output=True)  # fmt: skip
    took = time.monotonic() - started
    print(f"demo {'succeeded' if ok else 'FAILED'} in {took:.0f} s "
          f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
