"""Fixtures for the image tests: the shared registry lab plus helpers that run a provider in one event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from images.remote import ImageProvider
from tests.support.fixtures import *  # noqa: F401,F403
from tests.support.upstream_registry import UpstreamRegistry

Body = Callable[[ImageProvider], Awaitable[Any]]


def run_with_provider(store: Path, body: Body, **options: Any) -> Any:
    """Run `body(provider)` in a fresh event loop; afterwards destroy every rootfs it left and close."""
    async def main() -> Any:
        provider = ImageProvider(str(store), **{"retries": 1, **options})
        try:
            return await body(provider)
        finally:
            for handle in provider.handles():
                await provider.destroy(handle)
            await provider.close()
    return asyncio.run(main())


def store_listing(store: Path) -> dict[str, list[str]]:
    """What the store holds: layer keys, tmp entries and container dirs."""
    return {d: sorted(os.listdir(store / d)) for d in ("layers", "tmp", "containers")}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "store"
    yield path
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line]


class BasicAuthRegistry(UpstreamRegistry):
    """docker-registry with htpasswd (Basic) auth: the base class's auth hook writes htpasswd instead of
    starting a token server, and pushes send the first user's credentials."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, token_auth=True)

    def _start_token_server(self) -> str:
        path = self.workdir / "htpasswd"
        path.write_text("".join(f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}\n"
                                for user, pw in self.users.items()))
        return f"auth: {{htpasswd: {{realm: trellis-test, path: {path}}}}}\n"


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory, oci_busybox_layout: Any) -> Iterator[UpstreamRegistry]:
    registry = BasicAuthRegistry(tmp_path_factory.mktemp("basic-registry"))
    try:
        registry.start()
        registry.push(oci_busybox_layout, "test/busybox")
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRegistry]:
    """A plain registry only this module uses (tests corrupt its blobs)."""
    registry = UpstreamRegistry(tmp_path_factory.mktemp("images-registry"))
    try:
        yield registry.start()
    finally:
        registry.stop()
