"""Peas: processes with their own image, sharing every namespace of their container but the mount one."""

from __future__ import annotations

import io
import os
import shutil

import pytest

from garden import errors, models
from tests.garden_server import cgroup_dirs, mounts_under


@pytest.fixture(scope="module")
def pea_rootfs(tmp_path_factory, busybox_rootfs) -> str:
    """A second image: busybox plus a marker file the container's own rootfs does not have."""
    root = str(tmp_path_factory.mktemp("pea") / "rootfs")
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    with open(os.path.join(root, "pea-marker"), "w") as f:
        f.write("pea rootfs\n")
    return root


def run(client, handle: str, script: str, image: str = "", **spec) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.BytesIO()
    process = client.run(handle, models.ProcessSpec(path="sh", args=["-c", script],
                                                    image=models.ImageRef(uri=image), **spec),
                         stdout=out, stderr=err)
    return process.wait(), out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture
def sandbox(make):
    return make(user=False, limits=models.Limits(memory=models.MemoryLimits(64 << 20)))


NS_SCRIPT = "for n in ipc mnt net pid user uts; do echo $n $(readlink /proc/self/ns/$n); done"


@pytest.mark.parametrize("privileged", [False, True])
def test_pea_shares_all_namespaces_but_mount_and_has_its_own_rootfs(garden_server, pea_rootfs, privileged):
    client = garden_server.client()
    handle = client.create(models.ContainerSpec(privileged=privileged))
    try:
        code, in_container, _ = run(client, handle, NS_SCRIPT + "; cat /pea-marker 2>/dev/null; true")
        assert code == 0
        code, in_pea, _ = run(client, handle, NS_SCRIPT + "; cat /pea-marker; pwd", image=pea_rootfs)
        assert code == 0
        ours = dict(line.split(" ", 1) for line in in_container.splitlines())
        theirs = dict(line.split(" ", 1) for line in in_pea.splitlines()[:6])
        for ns in ("ipc", "net", "pid", "user", "uts"):
            assert ours[ns] == theirs[ns], ns
        assert ours["mnt"] != theirs["mnt"]
        assert in_pea.splitlines()[6:] == ["pea rootfs", "/"]  # its own rootfs; cwd defaults to /
        assert "pea rootfs" not in in_container
    finally:
        client.destroy(handle)


def test_pea_users_io_signals_and_shared_etc(garden_server, sandbox, pea_rootfs):
    client = garden_server.client()
    assert run(client, sandbox, "id -u; id -g", image=pea_rootfs)[:2] == (0, "0\n0\n")
    assert run(client, sandbox, "id -u; id -g", image=pea_rootfs, user="1000:1010")[:2] == (0, "1000\n1010\n")
    assert run(client, sandbox, "whoami", image=pea_rootfs, user="alice")[:2] == (0, "alice\n")
    assert run(client, sandbox, "echo out; echo err >&2; exit 7", image=pea_rootfs) == (7, "out\n", "err\n")
    assert run(client, sandbox, "echo '10.1.2.3 shared-name' >> /etc/hosts")[0] == 0
    code, hosts, _ = run(client, sandbox, "cat /etc/hosts /etc/resolv.conf", image=pea_rootfs)
    assert code == 0 and "10.1.2.3 shared-name" in hosts
    process = client.run(sandbox, models.ProcessSpec(path="sleep", args=["100"],
                                                     image=models.ImageRef(uri=pea_rootfs)))
    process.signal(models.SIGNAL_TERMINATE)
    assert process.wait() == 143
    with pytest.raises(errors.ExecutableNotFoundError):
        client.run(sandbox, models.ProcessSpec(path="no-such-binary", image=models.ImageRef(uri=pea_rootfs)))


def test_pea_memory_limits_shared_overridden_or_lifted(garden_server, sandbox, pea_rootfs):
    client = garden_server.client()
    hog = "head -c 100m /dev/zero | tail > /dev/null"
    assert run(client, sandbox, hog, image=pea_rootfs)[0] == 137  # shares the container's 64 MiB
    unlimited = models.ProcessLimits()
    assert run(client, sandbox, hog, image=pea_rootfs, override_limits=unlimited)[0] == 0
    limited = models.ProcessLimits(memory=models.MemoryLimits(limit_in_bytes=16 << 20))
    assert run(client, sandbox, "head -c 40m /dev/zero | tail > /dev/null", image=pea_rootfs,
               override_limits=limited)[0] == 137


def test_destroying_the_sandbox_kills_its_peas_and_leaves_nothing(garden_server, pea_rootfs):
    client = garden_server.client()
    handle = client.create(models.ContainerSpec())
    process = client.run(handle, models.ProcessSpec(path="sleep", args=["1000"], image=models.ImageRef(uri=pea_rootfs),
                                                    override_limits=models.ProcessLimits()))
    pea_dirs = [d for d in os.listdir(os.path.join(garden_server.store, "containers")) if d.startswith(handle)]
    assert len(pea_dirs) == 2  # the container's rootfs and the pea's
    client.destroy(handle)
    assert process.wait() == 137
    for name in pea_dirs:
        assert not cgroup_dirs(name)
        assert not mounts_under(os.path.join(garden_server.store, "containers", name))
        assert not os.path.exists(os.path.join(garden_server.store, "containers", name))
