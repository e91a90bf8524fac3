"""libvirt nwfilters through libvirt-python (the one external library).

:class:`LibvirtNWFilter` defines, undefines and looks up filters;
every ``libvirt.libvirtError`` becomes :class:`~flatnet.exception.
NWFilterError` in :func:`_libvirt_errors`, with libvirt's error code in
``.kwargs["code"]``. libvirt-python is imported when a backend is made,
never at module import.

:class:`NWFilterSync` applies a full desired set (from
:func:`flatnet.plan.nwfilter.host_filters`) to any backend, the fake
included: a filter is (re)defined only when its content differs, always
with the UUID it already has (libvirt >= 1.2.7 refuses to redefine a
name with a new UUID, LP#1360119), and stale instance filters are
undefined. It fails closed: a static filter that cannot be defined
raises; an instance filter that cannot be defined is reported in
``ApplyResult.failed`` with libvirt's reason (that instance is not
ready), and the others are applied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from flatnet import exception
from flatnet.plan import nwfilter as plan

LOG = logging.getLogger(__name__)
URI = "qemu:///system"
# libvirt's virErrorNumber values (virterror.h, a stable ABI)
VIR_ERR_OPERATION_FAILED = 9
VIR_ERR_OPERATION_INVALID = 55
VIR_ERR_NO_NWFILTER = 62


@dataclasses.dataclass(frozen=True, slots=True)
class LiveFilter:
    """A defined filter as libvirt returns it."""

    name: str
    uuid: str
    xml: str


class NWFilterBackend(Protocol):
    """What NWFilterSync needs from libvirt (or the fake)."""

    def names(self) -> set[str]: ...

    def lookup(self, name: str) -> LiveFilter | None: ...

    def define(self, xml: str) -> str: ...

    def undefine(self, name: str) -> bool: ...


def error_code(exc: exception.NWFilterError) -> int | None:
    """libvirt's error code of a translated error (None if not libvirt)."""
    code = exc.kwargs.get("code")
    return code if isinstance(code, int) else None


def in_use(exc: exception.NWFilterError) -> bool:
    """True for "filter is in use" (undefine while a guest uses it)."""
    return error_code(exc) == VIR_ERR_OPERATION_INVALID


@contextlib.contextmanager
def _libvirt_errors(libvirt: Any, name: str) -> Iterator[None]:
    """The one place libvirtError becomes NWFilterError."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise exception.NWFilterError(
            name=name,
            code=exc.get_error_code(),
            reason=exc.get_error_message() or str(exc),
        ) from exc


def _ignore_libvirt_error(_ctx: object, _err: object) -> None:
    """libvirt prints every error on stderr unless a handler is set;
    ours are raised (and logged by the caller) instead."""


class LibvirtNWFilter:
    """nwfilters of the libvirtd at ``uri``."""

    def __init__(self, uri: str = URI) -> None:
        import libvirt  # noqa: PLC0415 (optional dependency)

        self._libvirt = libvirt
        self.uri = uri
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        with _libvirt_errors(libvirt, "-"):
            self._conn = libvirt.open(uri)

    def __repr__(self) -> str:
        return f"LibvirtNWFilter({self.uri!r})"

    def names(self) -> set[str]:
        with _libvirt_errors(self._libvirt, "-"):
            return set(self._conn.listNWFilters())

    def lookup(self, name: str) -> LiveFilter | None:
        """The filter ``name``, or None if it is not defined."""
        try:
            with _libvirt_errors(self._libvirt, name):
                flt = self._conn.nwfilterLookupByName(name)
                return LiveFilter(name, flt.UUIDString(), flt.XMLDesc(0))
        except exception.NWFilterError as exc:
            if error_code(exc) == VIR_ERR_NO_NWFILTER:
                return None
            raise

    def define(self, xml: str) -> str:
        """Define (or redefine) from ``xml``; returns the UUID."""
        name = plan.parse(xml)[0].name
        with _libvirt_errors(self._libvirt, name):
            return str(self._conn.nwfilterDefineXML(xml).UUIDString())

    def undefine(self, name: str) -> bool:
        """Undefine ``name``; False if it was not defined. A filter in
        use raises NWFilterError (see :func:`in_use`)."""
        try:
            with _libvirt_errors(self._libvirt, name):
                self._conn.nwfilterLookupByName(name).undefine()
        except exception.NWFilterError as exc:
            if error_code(exc) == VIR_ERR_NO_NWFILTER:
                return False
            raise
        return True

    def close(self) -> None:
        with _libvirt_errors(self._libvirt, "-"):
            self._conn.close()


@dataclasses.dataclass
class ApplyResult:
    """What one :meth:`NWFilterSync.apply` did."""

    defined: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    #: stale filters still used by a guest: undefine again next time
    busy: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, exception.NWFilterError] = dataclasses.field(
        default_factory=dict
    )


class NWFilterSync:
    """Apply desired filter sets idempotently, remembering what is live
    (name -> UUID and content) so an unchanged set costs no RPC."""

    def __init__(self, prune_prefix: str = plan.INSTANCE_PREFIX) -> None:
        #: filters with this prefix that are not desired get undefined
        self.prune_prefix = prune_prefix
        self._live: dict[str, tuple[str, plan.NWFilter]] = {}
        self._known_names: set[str] | None = None

    def forget(self) -> None:
        """Re-read libvirt at the next apply (after an error, on verify)."""
        self._live.clear()
        self._known_names = None

    def apply(
        self,
        backend: NWFilterBackend,
        desired: Sequence[plan.NWFilter],
        verify: bool = False,
    ) -> ApplyResult:
        """Make the filters of ``backend`` match ``desired`` (static
        filters first, as host_filters orders them)."""
        if verify or self._known_names is None:
            self.forget()
            self._known_names = backend.names()
        names = self._known_names
        for name, ref in plan.undefined_refs(desired, names):
            raise exception.NWFilterError(
                name=name, code=None, reason=f"references undefined {ref}"
            )
        result = ApplyResult()
        for flt in desired:
            try:
                if self._ensure(backend, flt):
                    result.defined.append(flt.name)
            except exception.NWFilterError as exc:
                if not flt.name.startswith(self.prune_prefix):
                    raise
                LOG.error("nwfilter %s not defined: %s", flt.name, exc)
                result.failed[flt.name] = exc
        self._prune(backend, {f.name for f in desired}, result)
        return result

    def _ensure(self, backend: NWFilterBackend, flt: plan.NWFilter) -> bool:
        known = self._live.get(flt.name)
        if known is None and flt.name in (self._known_names or ()):
            live = backend.lookup(flt.name)
            if live is not None:
                known = (live.uuid, plan.parse(live.xml)[0])
        if known is not None and plan.same(known[1], flt):
            self._live[flt.name] = known
            return False
        uuid = backend.define(flt.xml(known[0] if known else None))
        self._live[flt.name] = (uuid, flt)
        if self._known_names is not None:
            self._known_names.add(flt.name)
        LOG.debug("nwfilter %s defined (uuid %s)", flt.name, uuid)
        return True

    def _prune(
        self, backend: NWFilterBackend, wanted: set[str], result: ApplyResult
    ) -> None:
        names = self._known_names if self._known_names is not None else set()
        stale = sorted(
            n
            for n in names
            if n.startswith(self.prune_prefix) and n not in wanted
        )
        for name in stale:
            try:
                backend.undefine(name)
            except exception.NWFilterError as exc:
                if not in_use(exc):
                    raise
                result.busy.append(name)
                continue
            names.discard(name)
            self._live.pop(name, None)
            result.removed.append(name)
