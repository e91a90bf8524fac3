"""Fixtures for functional tests: per-test network namespaces."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.functional import netns


@pytest.fixture
def make_netns() -> Iterator[Callable[[str], str]]:
    """Factory: ``make_netns("host")`` returns a new namespace name; all
    are removed (with their processes) at the end of the test."""
    created: list[str] = []

    def factory(kind: str = "ns") -> str:
        name = netns.unique_name(kind)
        netns.create(name)
        created.append(name)
        return name

    yield factory
    for name in reversed(created):
        netns.delete(name)
