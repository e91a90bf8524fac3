"""The eventlet edge of the compute-driver API (nova-compute is
monkey-patched).

The core never imports eventlet; a monkey-patched process builds its
API here, so that every blocking database call (SQLite, a driver's
socket read outside eventlet's reach) runs in eventlet's native thread
pool (``eventlet.tpool.execute``), while waiting between readiness
polls is ``time.sleep``, which monkey-patching turns into a yield::

    import eventlet
    eventlet.monkey_patch()
    from flatnet.cmd import eventlet_support
    api = eventlet_support.network_api(settings)
"""

# ruff: noqa: PLC0415 - eventlet is imported only when asked for

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flatnet.db.api import Database
    from flatnet.service.network_api import Executor, NetworkAPI
    from flatnet.settings import Settings


def tpool_executor() -> Executor:
    """``eventlet.tpool.execute``: run a blocking call in a native
    thread, the calling greenthread yielding until it returns."""
    from eventlet import tpool  # type: ignore[import-untyped, import-not-found, unused-ignore]

    execute: Executor = tpool.execute
    return execute


def network_api(settings: Settings, db: Database | None = None) -> NetworkAPI:
    """:func:`flatnet.wiring.network_api` with the tpool executor."""
    from flatnet import wiring

    return wiring.network_api(settings, db, executor=tpool_executor())
