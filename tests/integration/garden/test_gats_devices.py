"""GATS `devices_test.go` mirrored in Python against the real daemon (one fresh container per spec)."""

from __future__ import annotations

import re

import pytest

from garden import models
from tests.integration.garden.gats_support import run_process


@pytest.mark.parametrize(("device", "major", "minor"), [
    ("/dev/tty", 5, 0), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/pts/ptmx", 5, 2),
], ids=["tty", "random", "urandom", "null", "zero", "full", "pts-ptmx"])
def test_device(client, container, device, major, minor):
    """Devices Devices should have the TTY / random / urandom / null / zero / full / /dev/pts/ptmx device."""
    code, out, err = run_process(client, container, models.ProcessSpec(path="ls", args=["-l", device]))
    assert code == 0, err
    assert re.search(rf"{major},\s*{minor}", out), out


@pytest.mark.parametrize(("device", "fd"), [
    ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2"),
], ids=["fd", "stdin", "stdout", "stderr"])
def test_process_fd_links(client, container, device, fd):
    """Devices Process should have /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr."""
    code, out, err = run_process(client, container, models.ProcessSpec(path="ls", args=["-l", device]))
    assert code == 0, err
    assert f"{device} -> {fd}" in out, out


def test_devpts_mounted(client, container):
    """Devices should have devpts mounted."""
    code, out, _ = run_process(client, container, models.ProcessSpec(user="root", path="cat", args=["/proc/mounts"]))
    assert code == 0
    assert re.search(r"devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=\d+,mode=620,ptmxmode=666", out), out

