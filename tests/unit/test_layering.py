"""The import rule of doc/architecture.md, checked on the source.

    cmd -> {settings, wiring} -> service -> {db, plan, linux, ipam, model}
    only conf and settings import oslo.config; nothing below them imports
    settings or wiring
    plan, ipam, mac, hostname -> model, exception, netaddr (pure)
    linux -> model, exception, plan (specs) + its external library
    db -> model, exception, ipam, hostname + SQLAlchemy/alembic
    nothing but cmd may import eventlet; no layer imports cmd.

A second test imports every module in a fresh interpreter and checks
that importing does nothing observable (no threads, no files, no
options registered on oslo.config's global CONF).
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PKG = ROOT / "flatnet"

PURE_ALLOWED = {
    "flatnet.model",
    "flatnet.exception",
    "flatnet.plan",
    "flatnet.hostname",
    "flatnet.mac",
    "flatnet.ipam",
    "flatnet.lazy_exports",
}
PURE_THIRD_PARTY = {"netaddr"}
HEAVY = {
    "sqlalchemy",
    "alembic",
    "pyroute2",
    "iptc",
    "libvirt",
    "eventlet",
    "oslo_config",
    "subprocess",
    "socket",
}

# layer prefix -> flatnet modules it may import
LAYER_RULES: dict[str, set[str]] = {
    "flatnet.plan": PURE_ALLOWED,
    "flatnet.ipam": PURE_ALLOWED,
    "flatnet.mac": PURE_ALLOWED,
    "flatnet.hostname": PURE_ALLOWED,
    "flatnet.model": {"flatnet.model"},
    "flatnet.exception": set(),
    # PEP 562 re-exports for packages' public names (stdlib only)
    "flatnet.lazy_exports": set(),
    "flatnet.linux": PURE_ALLOWED | {"flatnet.linux"},
    "flatnet.db": PURE_ALLOWED | {"flatnet.db"},
    # the host's name and IPv4 (defaults of host and my_ip): stdlib only
    "flatnet.host_identity": set(),
    "flatnet.conf": {"flatnet.conf", "flatnet.host_identity"},
    "flatnet.service": PURE_ALLOWED
    | {"flatnet.service", "flatnet.db", "flatnet.linux"},
    "flatnet.settings": PURE_ALLOWED
    | {
        "flatnet.settings",
        "flatnet.conf",
        "flatnet.service",
        "flatnet.host_identity",
    },
    "flatnet.wiring": PURE_ALLOWED
    | {"flatnet.settings", "flatnet.service", "flatnet.db", "flatnet.linux"},
    # migration edges (nova_import, writer) read/write through db/linux
    "flatnet.migrate": PURE_ALLOWED
    | {"flatnet.migrate", "flatnet.db", "flatnet.linux"},
    # ... and the planners/renderers are pure
    # (the bare package is listed for "from flatnet.migrate import x";
    # x itself must still be allowed)
    "flatnet.migrate.nova_plan": PURE_ALLOWED
    | {
        "flatnet.migrate.nova_values",
        "flatnet.migrate.nova_names",
        "flatnet.migrate.nova_secgroups",
        "flatnet.migrate",
    },
    "flatnet.migrate.nova_values": PURE_ALLOWED,
    "flatnet.migrate.nova_names": PURE_ALLOWED,
    "flatnet.migrate.nova_secgroups": PURE_ALLOWED
    | {"flatnet.migrate.nova_values", "flatnet.migrate"},
    "flatnet.migrate.neutron_export": PURE_ALLOWED,
    "flatnet.migrate.neutron_secgroups": PURE_ALLOWED,
    "flatnet.migrate.neutron_floating": PURE_ALLOWED,
    "flatnet.migrate.report": PURE_ALLOWED
    | {
        "flatnet.migrate.neutron_export",
        "flatnet.migrate.neutron_floating",
        "flatnet.migrate.neutron_secgroups",
        "flatnet.migrate.nova_names",
        "flatnet.migrate",
    },
}
PURE_MIGRATE = {
    "nova_plan.py",
    "nova_values.py",
    "nova_names.py",
    "nova_secgroups.py",
    "neutron_export.py",
    "neutron_secgroups.py",
    "neutron_floating.py",
    "report.py",
}
#: The only packages that may import oslo.config.
OSLO_ALLOWED = ("flatnet.conf", "flatnet.settings")


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative imports are not used in flatnet
                found.add("." * node.level + node.module)
            else:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _sources() -> list[pathlib.Path]:
    return sorted(p for p in PKG.rglob("*.py") if "migrations" not in p.parts)


def _rule_for(module: str) -> set[str] | None:
    best = None
    for prefix in LAYER_RULES:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return LAYER_RULES[best] if best is not None else None


def _allowed(imported: str, allowed: set[str]) -> bool:
    return any(imported == a or imported.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize(
    "path", _sources(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_layer_imports(path: pathlib.Path) -> None:
    module = _module_name(path)
    allowed = _rule_for(module)
    for imported in _imports(path):
        assert not imported.startswith("."), f"{module}: relative import"
        top = imported.split(".")[0]
        if top == "eventlet":
            assert module.startswith("flatnet.cmd"), (
                f"{module} imports eventlet; only cmd/ may"
            )
        if top == "oslo_config":
            assert module.startswith(OSLO_ALLOWED), (
                f"{module} imports oslo.config; only conf/ and settings/ may"
            )
        if top != "flatnet" or allowed is None or imported == "flatnet":
            continue
        # a bare "from flatnet.x import name" also lists x.name: only
        # the module part must be allowed.
        assert (
            _allowed(imported, allowed)
            or _allowed(imported.rsplit(".", 1)[0], allowed)
            and imported.rsplit(".", 1)[0] != "flatnet"
        ), f"{module} must not import {imported}"
        assert not imported.startswith("flatnet.cmd"), f"{module} imports cmd/"


# Executors own one external system each and do not import each other;
# only the netlink seam is shared, and only the iptables seam picks (and
# so imports) the iptables backends.
LINUX_SHARED = {"flatnet.linux.netlink"}
LINUX_EXTRA = {
    # procfs reads /proc (read only) to prove which process is dnsmasq.
    "flatnet.linux.dnsmasq": {"flatnet.linux.procfs"},
    # the helper check reads /proc the way procfs does
    "flatnet.linux.dnsmasq_helper": {"flatnet.linux.procfs"},
    # a DHCP shard's dnsmasq is the dnsmasq executor whose readiness is
    # a DHCPINFORM sent from inside its namespace.
    "flatnet.linux.dhcp_inform": {"flatnet.linux.dnsmasq"},
    "flatnet.linux.iptables": {
        "flatnet.linux.iptables_restore",
        "flatnet.linux.iptables_iptc",
    },
}


@pytest.mark.parametrize(
    "path",
    sorted((PKG / "linux").glob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_executors_do_not_import_each_other(path: pathlib.Path) -> None:
    module = _module_name(path)
    allowed = LINUX_SHARED | LINUX_EXTRA.get(module, set())
    for imported in _imports(path):
        if imported.startswith("flatnet.linux.") and imported != module:
            assert _allowed(imported, allowed), (
                f"{module} must not import {imported}"
            )


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in _sources()
        if p.parts[len(PKG.parts)]
        in {"plan", "ipam.py", "mac.py", "hostname.py", "model.py"}
        or (p.parent.name == "migrate" and p.name in PURE_MIGRATE)
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_pure_modules_import_nothing_heavy(path: pathlib.Path) -> None:
    module = _module_name(path)
    for imported in _imports(path):
        top = imported.split(".")[0]
        assert top not in HEAVY, f"pure module {module} imports {top}"
        assert top not in {
            "os",
            "io",
            "shutil",
            "pathlib",
            "time",
            "threading",
        }, f"pure module {module} imports {top} (I/O or clocks)"


def test_importing_every_module_has_no_side_effects(tmp_path) -> None:
    modules = [_module_name(p) for p in _sources()]
    script = f"""
import os, sys, threading
os.chdir({str(tmp_path)!r})
before = set(os.listdir('.'))
from oslo_config import cfg
opts_before = sorted(cfg.CONF)
import importlib
for name in {modules!r}:
    importlib.import_module(name)
assert sorted(cfg.CONF) == opts_before, sorted(cfg.CONF)
assert threading.active_count() == 1, threading.enumerate()
assert set(os.listdir('.')) == before
assert 'eventlet' not in sys.modules
print('ok', len({modules!r}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_dhcp_hook_event_path_is_import_light(tmp_path) -> None:
    """dnsmasq runs the hook per lease event (dnsmasq(8) --dhcp-script): the
    add/old/del path must not pull in the database, oslo.config,
    netlink, iptables, libvirt or eventlet."""
    events = tmp_path / "nova-br100.events"
    script = """
import sys
from flatnet.cmd import dhcpbridge
rc = dhcpbridge.main(["add", "fa:16:3e:00:00:01", "10.0.0.2", "x\\ny"])
heavy = {"sqlalchemy", "alembic", "oslo_config", "pyroute2", "iptc",
         "libvirt", "eventlet", "psycopg"}
print(rc, sorted(heavy & {m.split(".")[0] for m in sys.modules}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        check=False, cwd=ROOT, env={"FLATNET_EVENTS": str(events)},
    )  # fmt: skip
    assert out.stdout.split("\n")[0] == "0 []", out.stdout + out.stderr
    assert events.read_text() == "\nadd fa:16:3e:00:00:01 10.0.0.2\n"


def test_libvirt_is_imported_by_linux_nwfilter_only() -> None:
    """libvirt-python is linux/nwfilter.py's one external library (an
    optional extra): no other module may import it."""
    users = [
        _module_name(p)
        for p in _sources()
        if any(i.split(".")[0] == "libvirt" for i in _imports(p))
    ]
    assert users == ["flatnet.linux.nwfilter"]
