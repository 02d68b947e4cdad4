"""Fixtures for netns tests: a shared event loop, sandboxes of namespaces, networkers with own tags.

Everything is cleaned up by the pids, handles, interface prefixes and table names these fixtures made.
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from netns_sandbox import Sandbox

from netns.bridged import BridgeNetworker


@pytest.fixture(scope="session")
def run() -> Iterator[Any]:
    """Run a coroutine on one event loop shared by the session (the networker's loop)."""
    with asyncio.Runner() as runner:
        def _run(coro: Coroutine) -> Any:
            return runner.run(coro)
        yield _run


@pytest.fixture
def sandbox(tmp_path) -> Iterator[Sandbox]:
    box = Sandbox(str(tmp_path))
    yield box
    box.close()


def _networker(run, state_dir: str, tag: str, pool: str, **kwargs) -> Iterator[BridgeNetworker]:
    net = BridgeNetworker(state_dir, ipaddress.IPv4Network(pool), tag=tag, **kwargs)
    yield net
    for handle in net.handles():
        run(net.teardown(handle))
    run(net.close())
    listed = subprocess.run(["nft", "list", "table", "ip", net.table], capture_output=True)
    assert listed.returncode != 0, f"close() with no containers left the table {net.table}"


@pytest.fixture(scope="session")
def net(run, tmp_path_factory) -> Iterator[BridgeNetworker]:
    """An open networker (no deny list), its own tag, pool and port pool."""
    yield from _networker(run, str(tmp_path_factory.mktemp("net")), "t1", "10.251.0.0/24",
                          port_pool=(42001, 50))


@pytest.fixture(scope="session")
def denying_net(run, tmp_path_factory) -> Iterator[BridgeNetworker]:
    """A networker started with --deny-network 0.0.0.0/0."""
    yield from _networker(run, str(tmp_path_factory.mktemp("deny")), "t2", "10.252.0.0/24",
                          deny=[ipaddress.IPv4Network("0.0.0.0/0")], port_pool=(42101, 50))
