"""GATS `limits_test.go` mirrored in Python against the real daemon (one fresh container per spec).

The disk-limit specs, their metrics included, are mirrored in test_gats_disk.py.
"""

from __future__ import annotations

import os
import re

import pytest

from garden import models
from tests.integration.garden.gats_support import run_process, sh


def cgroup2_unified() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@pytest.mark.skipif(cgroup2_unified(), reason="GATS runs this for cgroups-v1 only")
def test_cpu_limit_v1(client, make):
    """Limits cgroups-v1 CPU limits reports the CPU limit."""
    handle = make(user=False, limits=models.Limits(cpu=models.CPULimits(limit_in_shares=100)))
    assert client.limits(handle).cpu.limit_in_shares == 100


@pytest.mark.skipif(not cgroup2_unified(), reason="GATS runs this for cgroups-v2 only (this host is v1/hybrid)")
def test_cpu_limit_v2(client, make):
    """Limits cgroups-v2 CPU limits reports the CPU limit."""
    import math

    handle = make(user=False, limits=models.Limits(cpu=models.CPULimits(weight=280)))
    log2 = math.log2(280)
    expected = math.ceil(10 ** ((log2 * log2 + 125 * log2) / 612.0 - 7.0 / 34.0))
    assert client.limits(handle).cpu.limit_in_shares == expected


MEMORY = models.Limits(memory=models.MemoryLimits(limit_in_bytes=64 << 20))


def test_memory_limit_reported(client, make):
    """Limits memory limits reports the memory limits."""
    handle = make(user=False, limits=MEMORY)
    assert client.limits(handle).memory.limit_in_bytes == 64 << 20


def test_memory_limit_kills(client, make):
    """Limits memory limits kills a process if it uses too much memory."""
    handle = make(user=False, limits=MEMORY)
    code, _, err = run_process(client, handle, models.ProcessSpec(
        user="root", path="dd", args=["if=/dev/urandom", "of=/dev/shm/too-big", "bs=1M", "count=65"]))
    assert code != 0
    assert "No space left on device" not in err  # killed by the memory cgroup, not by a full /dev/shm


def test_memory_within_limit_not_killed(client, make):
    """Limits memory limits doesn't kill a process that uses lots of memory within the limit."""
    handle = make(user=False, limits=MEMORY)
    code, _, err = run_process(client, handle, models.ProcessSpec(
        user="root", path="dd", args=["if=/dev/urandom", "of=/dev/shm/almost-too-big", "bs=1M", "count=58"]))
    assert code == 0, err


def test_pid_limit_prevents_forking(client, make):
    """Limits PID limits when there is a pid limit applied prevents forking of processes."""
    handle = make(user=False, limits=models.Limits(pid=models.PidLimits(max=50)))
    code, _, err = run_process(client, handle, sh("for i in `seq 1 50`; do /bin/sleep 2 & done", user="root"))
    assert code == 2, err
    assert re.search(r"sh: (?:line \d+: )?can't fork", err), err


def test_pid_limit_zero_is_unlimited(client, make):
    """Limits PID limits when the pid limit is set to 0 applies no limit."""
    handle = make(user=False, limits=models.Limits(pid=models.PidLimits(max=0)))
    assert run_process(client, handle, sh("ps", user="root"))[0] == 0


FD_SCRIPT = "set -e\n\n# must start after fd 2\n" + "".join(
    f"exec {fd}<>file{n}\n" for n, fd in enumerate(list(range(10, 40)) + [41], start=1)
) + "\necho should have died by now\n"


def test_fd_limit(client, make):
    """Limits FD limits When there is a FD limit applied applies the FD limit to containers."""
    handle = make(user=False)
    code, _, err = run_process(client, handle, sh(FD_SCRIPT, user="root", rlimits={"nofile": 30}))
    assert code == 1, err
    # GATS' busybox image prints "sh: dup2(3,30): Bad file descriptor"; Debian's busybox 1.35 (our test rootfs)
    # prints "sh: 3: Bad file descriptor" for the same failure. Either way it must be the dup to fd 30 that failed:
    # file21 (fd 30) was opened, file22 never was.
    assert re.search(r"sh: (?:line \d+: )?(?:dup2\(3,30\)|3): Bad file descriptor", err), err
    assert run_process(client, handle, sh("test -e file21 && ! test -e file22", user="root"))[0] == 0
