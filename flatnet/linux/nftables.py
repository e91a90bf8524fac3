"""EXECUTOR: nftables through ``nft -f -`` (one transaction per call).

The only module that runs ``nft``. The text it is given comes from
:mod:`flatnet.plan.dhcp_shards` (validated names and MACs only);
``nft -f`` applies a whole input atomically or nothing (nft(8): "the
file is parsed and ... committed in one single transaction"). Every
failure becomes :class:`~flatnet.exception.FirewallApplyError` here,
once.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Sequence

from flatnet import exception

LOG = logging.getLogger(__name__)


class Nft:
    """``nft`` in the current namespace, or inside ``netns``."""

    def __init__(
        self, netns: str | None = None, timeout: float = 30.0
    ) -> None:
        self._netns = netns
        self._timeout = timeout

    def _argv(self, args: Sequence[str]) -> list[str]:
        argv = ["nft", *args]
        if self._netns is not None:
            argv = ["ip", "netns", "exec", self._netns, *argv]
        return argv

    def _run(self, table: str, args: Sequence[str], text: str) -> str:
        try:
            done = subprocess.run(
                self._argv(args),
                input=text,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise exception.FirewallApplyError(
                table=table, reason=f"nft: {exc}"
            ) from exc
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["?"])[0]
            raise exception.FirewallApplyError(
                table=table, reason=f"nft exit {done.returncode}: {first}"
            )
        return done.stdout

    def apply(self, table: str, text: str) -> None:
        """Apply ``text`` (``nft -f -`` input) in one transaction."""
        if text:
            self._run(table, ["-f", "-"], text)
            LOG.debug("nft %s: applied %d bytes", table, len(text))

    def exists(self, family: str, table: str) -> bool:
        """True if ``family table`` exists."""
        try:
            self._run(table, ["-t", "list", "table", family, table], "")
        except exception.FirewallApplyError:
            return False
        return True

    def set_members(self, family: str, table: str, name: str) -> set[str]:
        """The elements of set ``name`` (lower-case text)."""
        out = self._run(table, ["-j", "list", "set", family, table, name], "")
        found: set[str] = set()
        for item in json.loads(out).get("nftables", []):
            for elem in item.get("set", {}).get("elem", []):
                if isinstance(elem, str):
                    found.add(elem.lower())
        return found
