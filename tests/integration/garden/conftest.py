"""Fixtures for the garden tests: a client, containers destroyed afterwards, GATS' JustBeforeEach container."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from garden import models
from tests.integration.garden.gats_support import create_user


@pytest.fixture
def client(garden_server):
    return garden_server.client()


@pytest.fixture
def make(client) -> Iterator[Callable[..., str]]:
    """GATS' JustBeforeEach: create a container from per-spec vars, then Lifecycle's createUser alice."""
    made: list[str] = []

    def create(user: bool = True, **spec) -> str:
        handle = client.create(models.ContainerSpec(**spec))
        made.append(handle)
        if user:
            create_user(client, handle, "alice")
        return handle

    yield create
    live = set(client.list({"garden.state": "all"}))
    for handle in made:
        if handle in live:
            client.destroy(handle)


@pytest.fixture
def container(make) -> str:
    return make()
