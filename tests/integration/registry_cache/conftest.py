"""Fixtures for the registry cache tests: the shared upstream lab plus caches started per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cache_server import CacheServer
from tests.support.fixtures import *  # noqa: F401,F403
from tests.support.upstream_registry import UpstreamRegistry


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, upstream_registry: UpstreamRegistry,
          upstream_registry_auth: UpstreamRegistry) -> Iterator[CacheServer]:
    """A cache (no pull-through) that may stage from both session upstreams."""
    upstreams = [upstream_registry.host, upstream_registry_auth.host]
    server = CacheServer(tmp_path_factory.mktemp("cache"), upstreams)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRegistry]:
    """A plain upstream only this module uses (tests re-tag, corrupt and stop it)."""
    registry = UpstreamRegistry(tmp_path_factory.mktemp("own-upstream"))
    try:
        yield registry.start()
    finally:
        registry.stop()
