"""Shared fixtures: a busybox rootfs built once per session and a real Garden daemon."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from garden.daemon_process import GardenServer
from images.busybox import build_rootfs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests run as root")
        for item in items:
            if "integration" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_rootfs(str(tmp_path_factory.mktemp("rootfs") / "busybox"))


@pytest.fixture(scope="session")
def garden_server(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: str) -> Iterator[GardenServer]:
    """One daemon shared by the session (no networking: see the netns tests for that)."""
    server = GardenServer(tmp_path_factory.mktemp("garden"), busybox_rootfs, ["--disable-networking"])
    with server.running():
        yield server
