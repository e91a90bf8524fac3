"""Shared pytest configuration: the ``root`` marker skips without root."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    """The settings cache of every command the tests run (in-process or
    as a subprocess) lives in a directory of this run, not in the
    user's ~/.cache."""
    del config
    if "FLATNET_TEST_CACHE_HOME" not in os.environ:
        folder = tempfile.mkdtemp(prefix="flatnet-test-cache-")
        os.environ["FLATNET_TEST_CACHE_HOME"] = folder
        os.environ["XDG_CACHE_HOME"] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    del config
    folder = os.environ.pop("FLATNET_TEST_CACHE_HOME", None)
    if folder and os.environ.get("XDG_CACHE_HOME") == folder:
        del os.environ["XDG_CACHE_HOME"]
        shutil.rmtree(folder, ignore_errors=True)
