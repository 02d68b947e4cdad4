"""GATS `limits_test.go` "disk limits" specs mirrored in Python against the real daemon (one container per spec).

GATS pulls $LIMITS_TEST_URI (a busybox image of ~4 MB) for the total-scope specs and
docker:///ubuntu#trusty-20160323 (far bigger than 20 MB) for "when rootfs exceeds the quota"; offline both are
local OCI layouts (`oci:///…`): busybox plus a zero-filled file bringing it to ~4 MiB, and busybox plus 24 MiB.
The other contexts (exclusive scope, pre-existing users, privileged) use the suite's default rootfs, as GATS does;
alice and bob are added with GATS' createUser. The two "Validating Metrics" specs are also in test_gats_limits.py
(with the same 500 MB total limit); they are repeated here so this file covers the whole "disk limits" Describe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from garden import errors, models
from tests.integration.garden.gats_support import create_user, run_process
from tests.support.oci_images import build_busybox

MiB = 1 << 20


def disk(byte_hard: int, scope: str) -> models.Limits:
    return models.Limits(disk=models.DiskLimits(byte_soft=byte_hard, byte_hard=byte_hard, scope=scope))


TOTAL_500 = disk(500 * MiB, models.DISK_SCOPE_TOTAL)  # the Describe's BeforeEach
TOTAL_20 = disk(20 * MiB, models.DISK_SCOPE_TOTAL)
EXCLUSIVE_10 = disk(10 * MiB, models.DISK_SCOPE_EXCLUSIVE)
EXCLUSIVE_50 = disk(50 * MiB, models.DISK_SCOPE_EXCLUSIVE)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root: Path = tmp_path_factory.mktemp("gats-disk")
    limits = build_busybox(root / "limits", extra_files={"etc/filler": "\0" * (2 * MiB + 128 * 1024)})
    big = build_busybox(root / "big", extra_files={"etc/filler": "\0" * (24 * MiB)})
    return {"limits": f"oci://{limits.layout}#v1", "big": f"oci://{big.layout}#v1"}


def dd(client, handle: str, user: str, of: str, count: int, source: str = "/dev/zero") -> int:
    """Run GATS' dd; its exit status. A failure must be the quota's (ENOSPC), not a missing user or directory."""
    code, _, err = run_process(client, handle, models.ProcessSpec(
        user=user, path="dd", args=[f"if={source}", f"of={of}", "bs=1M", f"count={count}"]))
    assert code == 0 or "No space left on device" in err, (code, err)
    return code


def eventually(fn: Callable[[], object], timeout: float = 15.0, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while not (value := fn()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


# ----------------------------------------------------------------------------------- Validating Metrics


@pytest.mark.parametrize("scope", ["exclusive", "total"])
def test_validating_metrics(client, make, scope):
    """Limits disk limits Validating Metrics Metrics with exclusive metrics / with total metrics."""
    handle = make(user=False, limits=TOTAL_500)
    create_user(client, handle, "alice")

    def reporter() -> int:
        stat = client.metrics(handle).disk
        return stat.exclusive_bytes_used if scope == "exclusive" else stat.total_bytes_used

    initial = reporter()
    assert dd(client, handle, "alice", "/home/alice/some-file", 3) == 0
    assert eventually(lambda: abs(reporter() - (initial + 3 * MiB)) <= MiB), (reporter(), initial)
    assert dd(client, handle, "alice", "/home/alice/another-file", 10) == 0
    assert eventually(lambda: abs(reporter() - (initial + 13 * MiB)) <= MiB), (reporter(), initial)


# ----------------------------------------------------------------------------------- when the scope is total


def test_total_reports_initial_total_bytes(client, make, images):
    """Limits disk limits when the scope is total reports initial total bytes of a container based on size of
    image."""
    handle = make(user=False, limits=TOTAL_20, image=models.ImageRef(uri=images["limits"]))
    stat = client.metrics(handle).disk
    assert stat.total_bytes_used > stat.exclusive_bytes_used, stat
    assert abs(stat.total_bytes_used - 4 * MiB) <= MiB, stat  # base busybox is ~4 MB


def test_total_within_limit_not_killed(client, make, images):
    """Limits disk limits when the scope is total and run a process that does not exceed the limit does not kill
    the process."""
    handle = make(user=False, limits=TOTAL_20, image=models.ImageRef(uri=images["limits"]))
    assert dd(client, handle, "root", "/root/test", 7) == 0


def test_total_exceeds_due_to_rootfs_killed(client, make, images):
    """Limits disk limits when the scope is total and run a process that exceeds the quota due to the size of the
    rootfs kills the process."""
    handle = make(user=False, limits=TOTAL_20, image=models.ImageRef(uri=images["limits"]))
    assert dd(client, handle, "root", "/root/test", 20) != 0


def test_total_rootfs_exceeds_quota_create_fails(client, images):
    """Limits disk limits when the scope is total when rootfs exceeds the quota should fail to create a
    container."""
    live_before = set(client.list({"garden.state": "all"}))
    try:
        with pytest.raises(errors.GardenError, match="disk limit"):
            client.create(models.ContainerSpec(limits=TOTAL_20, image=models.ImageRef(uri=images["big"])))
    finally:
        for leaked in set(client.list({"garden.state": "all"})) - live_before:
            client.destroy(leaked)


# ----------------------------------------------------------------------------------- when the scope is exclusive


def test_exclusive_rootfs_not_counted(client, make):
    """Limits disk limits when the scope is exclusive and run a process that would exceed the quota due to the
    size of the rootfs does not kill the process."""
    handle = make(user=False, limits=EXCLUSIVE_10)
    assert dd(client, handle, "root", "/root/test", 9) == 0


def test_exclusive_exceeds_killed(client, make):
    """Limits disk limits when the scope is exclusive and run a process that exceeds the quota kills the
    process."""
    handle = make(user=False, limits=EXCLUSIVE_10)
    assert dd(client, handle, "root", "/root/test", 11) != 0


# ----------------------------------------------------------------------------------- a rootfs with pre-existing users


@pytest.fixture
def with_users(client, make) -> Callable[..., str]:
    def create(limits: models.Limits = EXCLUSIVE_10) -> str:
        handle = make(user=False, limits=limits)
        create_user(client, handle, "alice")
        create_user(client, handle, "bob")
        return handle

    return create


@pytest.mark.parametrize("user", ["bob", "alice"])
def test_preexisting_users_exceed_killed(client, with_users, user):
    """Limits disk limits a rootfs with pre-existing users and run a process that exceeds the quota as bob / as
    alice kills the process."""
    handle = with_users()
    assert dd(client, handle, user, f"/home/{user}/test", 11) != 0


def test_preexisting_users_shared_limit(client, with_users):
    """Limits disk limits a rootfs with pre-existing users user alice is getting near the set limit kills the
    process if user bob tries to exceed the shared limit."""
    handle = with_users()
    assert dd(client, handle, "alice", "/home/alice/test", 8) == 0
    assert dd(client, handle, "bob", "/home/bob/test", 3) != 0


def test_preexisting_users_each_container_own_quota(client, make, with_users):
    """Limits disk limits a rootfs with pre-existing users when multiple containers are created for the same
    user gives each container its own quota."""
    first = with_users(EXCLUSIVE_50)
    second = make(user=False, limits=EXCLUSIVE_50)
    create_user(client, second, "alice")
    for handle in (first, second):
        assert dd(client, handle, "alice", "/tmp/some-file", 40, source="/dev/urandom") == 0


# ----------------------------------------------------------------------------------- when the container is privileged


def test_privileged_root_exceeds_killed(client, make):
    """Limits disk limits when the container is privileged and run a process that exceeds the quota as root kills
    the process."""
    handle = make(user=False, privileged=True, limits=EXCLUSIVE_10)
    assert dd(client, handle, "root", "/root/test", 11) != 0


def test_privileged_new_user_exceeds_killed(client, make):
    """Limits disk limits when the container is privileged and run a process that exceeds the quota as a new user
    kills the process."""
    handle = make(user=False, privileged=True, limits=EXCLUSIVE_10)
    create_user(client, handle, "bob")
    assert dd(client, handle, "bob", "/home/bob/test", 11) != 0
