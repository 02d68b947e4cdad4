"""GATS `networking_test.go` mirrored in Python against a daemon of our own with networking enabled.

Not mirrored (they need the internet): resolving www.example.com (2 specs) and the subnet specs that reach
8.8.8.8:53 (2 specs). Traffic here stays on loopback and inside the containers this module creates.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from garden import models
from garden.daemon_process import GardenServer
from tests.integration.garden.gats_support import Buffer, run_process, sh


@pytest.fixture(scope="module")
def net_server(tmp_path_factory, busybox_rootfs) -> Iterator[GardenServer]:
    server = GardenServer(tmp_path_factory.mktemp("gats-net"), busybox_rootfs,
                          ["--network-tag", "gt", "--network-pool", "10.252.16.0/24",
                           "--port-pool-start", "62400", "--port-pool-size", "64"])
    with server.running():
        yield server
    # with no container left, a stopping daemon removes its nftables table
    assert subprocess.run(["nft", "list", "table", "ip", "trellisgt"], capture_output=True).returncode != 0


@pytest.fixture
def client(net_server):
    """Overrides conftest's client: `make` and `container` then create containers with networking."""
    return net_server.client()




def _read_from(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
        return data


def test_net_in(client, container):
    """Networking can be contacted after a NetIn."""
    server = client.run(container, sh("echo hallo | nc -l -p 8080", user="root"), stdout=Buffer(), stderr=Buffer())
    host_port, container_port = client.net_in(container, 0, 8080)
    assert container_port == 8080
    got = b""
    deadline = time.monotonic() + 10
    while b"hallo" not in got and time.monotonic() < deadline:
        try:
            got = _read_from(host_port)
        except OSError:
            time.sleep(0.1)
    assert b"hallo" in got
    server.wait(10)


@pytest.mark.parametrize("path", ["/etc/hosts", "/etc/resolv.conf"])
def test_root_can_overwrite(client, container, path):
    """Networking container root can overwrite /etc/hosts (and /etc/resolv.conf)."""
    assert run_process(client, container, sh(f"echo NONSENSE > {path}", user="root"))[0] == 0


@pytest.mark.parametrize("path", ["/etc/hosts", "/etc/resolv.conf"])
def test_non_root_cannot_overwrite(client, container, path):
    """Networking running as a user other than container root non-container-root can't overwrite /etc/hosts (and
    /etc/resolv.conf)."""
    code, _, err = run_process(client, container, sh(f"echo NONSENSE > {path}", user="alice"))
    assert code == 1
    assert "Permission denied" in err


def _can_resolve(client, handle: str, name: str) -> str:
    """GATS' itCanResolve: `ping -W 2 -c 1 NAME` eventually reports one packet received."""
    out = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, out, err = run_process(client, handle, models.ProcessSpec(path="ping", args=["-W", "2", "-c", "1", name]))
        out += err
        if "1 packets transmitted, 1 packets received" in out:
            break
        time.sleep(0.2)
    return out


def test_resolve_localhost(client, container):
    """Networking domain name resolution can resolve localhost."""
    out = _can_resolve(client, container, "localhost")
    assert "1 packets transmitted, 1 packets received" in out, out


def test_resolve_own_hostname(client, container):
    """Networking domain name resolution can resolve its hostname."""
    out = _can_resolve(client, container, container)
    assert "1 packets transmitted, 1 packets received" in out, out


@pytest.fixture(scope="module")
def bare_rootfs(tmp_path_factory, busybox_rootfs) -> str:
    """The busybox rootfs without /etc/hosts and /etc/resolv.conf (GATS: docker:///busybox#1.37.0)."""
    path = str(tmp_path_factory.mktemp("gats-bare") / "rootfs")
    shutil.copytree(busybox_rootfs, path, symlinks=True)
    for name in ("hosts", "resolv.conf"):
        os.unlink(os.path.join(path, "etc", name))
    return path


def test_resolve_hostname_without_etc_hosts(client, make, bare_rootfs):
    """Networking domain name resolution when the rootFS doesn't contain /etc/hosts or /etc/resolv.conf can still
    resolve its hostname because garden modifies /etc/hosts."""
    handle = make(rootfs=bare_rootfs)
    out = _can_resolve(client, handle, handle)
    assert "1 packets transmitted, 1 packets received" in out, out
