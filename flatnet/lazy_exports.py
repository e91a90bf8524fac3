"""PEP 562 lazy exports: a package's public names, each imported from its
private module on first use, so a command pays only for what it runs
(``flatnet-manage network list`` loads no allocation or rule-engine code).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    module_name: str, package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``module_name`` (the module
    being imported), which finds each name of ``homes`` (name -> module
    under ``package``) on first use and keeps it in the module."""
    namespace = vars(sys.modules[module_name])

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(
                f"module {module_name!r} has no attribute {name!r}"
            )
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *homes})

    return getattr_, dir_
