"""Finding, parsing and reading the configuration files (oslo.config).

The only module besides :mod:`flatnet.conf` that touches oslo.config.
:class:`OptionReader` reads one option at a time and turns every problem
into a one-line :class:`~flatnet.exception.ConfigError` that names the
option, its value and the file that set it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from oslo_config import cfg

from flatnet import conf, exception
from flatnet.settings import ConfigSource, OptionOrigin

T = TypeVar("T")
_INVALID_RE = re.compile(r" is not valid: (?P<reason>.*)$", re.DOTALL)


def parse(source: ConfigSource) -> cfg.ConfigOpts:
    """A fresh ConfigOpts with flatnet's options, parsed from
    ``source``. Raises ConfigError naming the file for syntax errors."""
    argv: list[str] = []
    for path in source.files:
        argv += ["--config-file", path]
    try:
        return conf.parse(argv, default_config_files=[])
    except cfg.Error as exc:
        raise exception.ConfigError(reason=_first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class OptionReader:
    """Reads options from a parsed ConfigOpts, one at a time.

    Every value read is remembered (``read``) so that a test can prove
    that no registered option is left unvalidated.
    """

    def __init__(self, opts: cfg.ConfigOpts, source: ConfigSource) -> None:
        self.opts = opts
        self.source = source
        self.read: set[tuple[str, str]] = set()
        self._sections: dict[str, dict[str, dict[str, list[str]]]] = {}

    def get(
        self,
        name: str,
        group: str = "DEFAULT",
        check: Callable[[Any], T] | None = None,
    ) -> Any:
        """The typed value of an option, after ``check`` (which raises
        InvalidInput or ValueError for a bad value). Raises
        ConfigError naming the option, its value and its file."""
        self.read.add((group, name))
        try:
            space = self.opts if group == "DEFAULT" else self.opts[group]
            value = getattr(space, name)
        except cfg.ConfigSourceValueError as exc:
            match = _INVALID_RE.search(str(exc))
            reason = match["reason"] if match else _first_line(exc)
            raise self.error(name, group, reason) from exc
        except (cfg.Error, ValueError) as exc:
            raise self.error(name, group, _first_line(exc)) from exc
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(name, group, "must be a finite number")
        if check is None:
            return value
        try:
            return check(value)
        except (exception.InvalidInput, ValueError) as exc:
            raise self.error(name, group, _first_line(exc)) from exc

    def origin(self, name: str, group: str = "DEFAULT") -> str:
        """The file that set an option (the last one), or "default"."""
        found = self.setting(name, group)
        return found[0] if found is not None else "default"

    def setting(self, name: str, group: str) -> tuple[str, str] | None:
        """(file, raw text) of the last file that sets the option."""
        for path in reversed(self.source.files):
            values = self._file(path).get(group, {}).get(name)
            if values:
                return path, str(values[-1])
        return None

    def _file(self, path: str) -> dict[str, dict[str, list[str]]]:
        if path not in self._sections:
            sections: dict[str, dict[str, list[str]]] = {}
            try:
                cfg.ConfigParser(path, sections).parse()
            except (OSError, cfg.Error):
                sections = {}
            self._sections[path] = sections
        return self._sections[path]

    def error(
        self, name: str, group: str, reason: str
    ) -> exception.ConfigError:
        found = self.setting(name, group)
        if found is None:
            where, shown = "default", ""
        else:
            where, shown = found[0], f" = {found[1]!r}"
        return exception.ConfigError(
            reason=f"{where}: [{group}] {name}{shown}: {reason}"
        )

    def origins(self) -> list[OptionOrigin]:
        """Every option read, with its value (secrets hidden)."""
        out = []
        for group, name in sorted(self.read):
            opt = self._opt(name, group)
            value = self.get(name, group)
            shown = "****" if opt is not None and opt.secret else str(value)
            out.append(
                OptionOrigin(group, name, shown, self.origin(name, group))
            )
        return out

    def _opt(self, name: str, group: str) -> cfg.Opt | None:
        for opt_group, opts in _registered():
            if opt_group == group:
                for opt in opts:
                    if opt.dest == name:
                        return opt
        return None


def _registered() -> list[tuple[str, list[cfg.Opt]]]:
    from flatnet.conf import opts  # noqa: PLC0415 - only for config show

    return opts.list_opts()


def registered_names() -> set[tuple[str, str]]:
    """(group, name) of every option flatnet registers."""
    return {(g, o.dest) for g, opts in _registered() for o in opts}
