"""Log a recurring failure once, then remind (the loop runs 10 times
a second: a stuck database or a full disk must not fill the log).

:meth:`Troubles.failed` logs a failure of ``where`` with its traceback
the first time, and again only when its text changes; while it stays
the same, one WARNING every ``remind_every`` seconds says how long and
how often. :meth:`Troubles.ok` logs the recovery.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

LOG = logging.getLogger(__name__)


def describe(error: BaseException | str) -> str:
    """One line for the operator: the driver's own message for database
    errors (SQLAlchemy wraps it with the SQL), else ``str(error)``."""
    if isinstance(error, str):
        return error
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip().splitlines()
    return text[0] if text else type(error).__name__


@dataclasses.dataclass(slots=True)
class _Trouble:
    text: str
    since: float
    remind: float
    count: int = 1


class Troubles:
    """Open failures by place (``dhcp network:1``, ``rules poll``...)."""

    def __init__(self, remind_every: float = 60.0) -> None:
        self.remind_every = remind_every
        self.clock: Callable[[], float] = time.monotonic
        self._open: dict[str, _Trouble] = {}

    def failed(self, where: str, error: BaseException | str) -> str:
        """Record a failure; returns its one-line text."""
        text = describe(error)
        now = self.clock()
        trouble = self._open.get(where)
        if trouble is None or trouble.text != text:
            info = error if isinstance(error, BaseException) else None
            LOG.error("%s failed: %s", where, text, exc_info=info)
            self._open[where] = _Trouble(text, now, now + self.remind_every)
            return text
        trouble.count += 1
        if now >= trouble.remind:
            trouble.remind = now + self.remind_every
            LOG.warning(
                "%s still failing (%d times in %.0f s): %s",
                where,
                trouble.count,
                now - trouble.since,
                text,
            )
        return text

    def ok(self, where: str) -> None:
        trouble = self._open.pop(where, None)
        if trouble is not None:
            LOG.info(
                "%s recovered after %d failures in %.1f s",
                where,
                trouble.count,
                self.clock() - trouble.since,
            )

    def open(self) -> dict[str, str]:
        """Where -> text of every failure not yet recovered."""
        return {where: t.text for where, t in self._open.items()}
