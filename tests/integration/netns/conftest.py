"""Fixtures for netns tests: "containers" are busybox processes in fresh network namespaces.

Everything is cleaned up by recorded pids, handles, interface prefixes and table names that these
fixtures made. Traffic only goes to loopback and to addresses inside those namespaces.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import subprocess
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from netns.bridged import BridgeNetworker

BUSYBOX = "/bin/busybox"


class Sandbox:
    """Processes in new network namespaces (like a container's pid 1) plus servers inside them."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def container(self) -> int:
        """A new netns with loopback up and a sleeping pid in it; returns that pid."""
        proc = self._spawn(["unshare", "--net", BUSYBOX, "sleep", "600"])
        home = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{proc.pid}/ns/net") == home:  # unshare has not run yet
            time.sleep(0.001)
        self.ns(proc.pid, "ip", "link", "set", "lo", "up")
        return proc.pid

    def http_server(self, pid: int, port: int, body: str) -> None:
        """busybox httpd in pid's netns serving `body` at /id."""
        root = os.path.join(self.tmp, f"www-{pid}-{port}")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "id"), "w") as f:
            f.write(body)
        self._spawn(["nsenter", f"--net=/proc/{pid}/ns/net", BUSYBOX, "httpd", "-f", "-p", str(port), "-h", root])

    def ns(self, pid: int, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a busybox applet in pid's netns."""
        return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", BUSYBOX, *argv],
                              capture_output=True, text=True, check=check, timeout=30)

    def fetch(self, pid: int, ip: str, port: int) -> str | None:
        """GET http://ip:port/id from inside pid's netns; None when refused, rejected or timed out."""
        r = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", BUSYBOX, "nc", "-w", "1", ip, str(port)],
                           input="GET /id HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or "\n\n" not in r.stdout:  # text mode turned CRLF into LF
            return None
        return r.stdout.split("\n\n", 1)[1]

    def kill(self, pid: int) -> None:
        for proc in self.procs:
            if proc.pid == pid:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()

    def _spawn(self, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc


def wait_for(fn, what: str, attempts: int = 50):
    """Retry until fn() returns a truthy value (servers start asynchronously); no timing asserts."""
    for _ in range(attempts):
        value = fn()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


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
    subprocess.run(["nft", "delete", "table", "ip", net.table], check=True)


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


def our_links(prefix: str) -> list[str]:
    """Host interfaces whose names carry a networker's prefix."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(prefix)]


def table_text(table: str) -> str:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True,
                          check=True).stdout
