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

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from flatnet.db.api import Database
    from flatnet.service.network_api import Executor, NetworkAPI
    from flatnet.settings import Settings

_T = TypeVar("_T")


def tpool_executor(max_concurrent: int = 1) -> Executor:
    """``eventlet.tpool.execute``: run a blocking call in a native
    thread, the calling greenthread yielding until it returns.

    At most ``max_concurrent`` calls (default one) are in the pool at
    once; the others wait as greenthreads (yielding). Monkey-patching
    makes SQLAlchemy's connection-pool lock green, and a native thread
    blocked on a green lock that a greenthread or another native thread
    holds is never woken: with 5 at once, 50 concurrent allocations hung
    in 3 runs of 4 here; with one, none did (a SQLite database
    serialises writes anyway)."""
    from eventlet import semaphore, tpool  # type: ignore[import-untyped, import-not-found, unused-ignore]

    gate = semaphore.Semaphore(max_concurrent)

    def execute(fn: Callable[..., _T], /, *args: Any) -> _T:
        with gate:
            result: _T = tpool.execute(fn, *args)
            return result

    return execute


def network_api(settings: Settings, db: Database | None = None) -> NetworkAPI:
    """:func:`flatnet.wiring.network_api` with the tpool executor."""
    from flatnet import wiring

    return wiring.network_api(settings, db, executor=tpool_executor())
