"""Which configuration files a command reads (no oslo.config: the
settings cache needs this answer before deciding to load it)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from flatnet import exception
from flatnet.settings import DEFAULT_CONFIG_FILES, ConfigSource


def find_config(
    given: Sequence[str], defaults: Sequence[str] = DEFAULT_CONFIG_FILES
) -> ConfigSource:
    """The files to read: ``given`` (--config-file, repeatable), else
    the first of ``defaults`` that exists. Raises ConfigError when there
    is none or one cannot be read: flatnet never runs on bare defaults
    (they would create a database under /var/lib/flatnet)."""
    if given:
        source = ConfigSource(tuple(os.path.abspath(f) for f in given))
    else:
        found = [f for f in defaults if os.path.exists(f)]
        if not found:
            raise exception.ConfigError(
                reason=f"no configuration file: {' and '.join(defaults)} "
                "does not exist; give --config-file PATH"
            )
        source = ConfigSource((found[0],), searched=True)
    for path in source.files:
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            why = "does not exist" if not os.path.exists(path) else (
                "is not a readable file"
            )  # fmt: skip
            raise exception.ConfigError(reason=f"{path} {why}")
    return source
