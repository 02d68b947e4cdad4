"""Container lifecycle through the HTTP API, checked in the kernel: namespaces, mounts, cgroups, cleanup."""

from __future__ import annotations

import io
import json
import os

import pytest

from garden import errors, models
from tests.garden_server import cgroup_dirs, mounts_under


def run(client, handle: str, *args: str, user: str = "", **spec) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.BytesIO()
    process = client.run(handle, models.ProcessSpec(path=args[0], args=list(args[1:]), user=user, **spec),
                         stdout=out, stderr=err)
    return process.wait(), out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture
def container(make):
    return make(user=False)


def test_create_builds_isolated_container_and_destroy_removes_everything(garden_server):
    client = garden_server.client()
    handle = client.create(models.ContainerSpec(handle="iso-check", env=["FOO=bar"]))
    info = client.info(handle)
    assert info.state == "active"
    with open(os.path.join(garden_server.depot, handle, "state.json")) as f:
        init_pid = json.load(f)["init_pid"]
    with open(f"/proc/{init_pid}/cmdline", "rb") as f:
        assert f.read() == b"/tmp/garden-init\0-P\0"
    for ns in ("mnt", "pid", "uts", "ipc", "net"):
        assert os.readlink(f"/proc/{init_pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")

    code, out, _ = run(client, handle, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; echo $FOO; "
                       "ps -o pid,comm | wc -l; ip -o link 2>/dev/null | wc -l")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].strip() == "/tmp/garden-init -P"
    assert lines[1] == "iso-check"
    assert lines[2] == "bar"
    assert cgroup_dirs(handle)
    container_dir = os.path.join(garden_server.store, "containers", handle)
    assert mounts_under(container_dir)

    client.destroy(handle)
    assert handle not in client.list()
    assert not cgroup_dirs(handle)
    assert not mounts_under(container_dir)
    assert not os.path.exists(container_dir)
    assert not os.path.exists(os.path.join(garden_server.depot, handle))
    with pytest.raises(ProcessLookupError):
        os.kill(init_pid, 0)


def test_pid_namespace_and_dev(garden_server, container):
    client = garden_server.client()
    code, out, _ = run(client, container, "sh", "-c", "echo $$; ls /dev; mount | grep -E ' /(proc|sys|dev/shm|tmp) '")
    assert code == 0
    lines = out.split()
    assert int(lines[0]) < 10  # low pids: its own pid namespace
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd", "stdin"):
        assert dev in lines
    assert "proc on /proc type proc" in out
    assert " on /dev/shm type tmpfs" in out
    code, out, _ = run(client, container, "sh", "-c", "echo hi > /dev/stdout; head -c 4 /dev/zero | wc -c")
    assert (code, out) == (0, "hi\n4\n")


def test_duplicate_handle_and_unknown_handle_messages(garden_server, container):
    client = garden_server.client()
    with pytest.raises(errors.GardenError, match=f"^Handle '{container}' already in use$"):
        client.create(models.ContainerSpec(handle=container))
    with pytest.raises(errors.ContainerNotFoundError) as e:
        client.destroy("no-such-container")
    assert str(e.value) == "unknown handle: no-such-container"


def test_memory_limit_kills_and_reports_oom(garden_server):
    client = garden_server.client()
    limits = models.Limits(memory=models.MemoryLimits(limit_in_bytes=32 << 20))
    handle = client.create(models.ContainerSpec(limits=limits))
    try:
        assert client.limits(handle).memory.limit_in_bytes == 32 << 20
        code, _, _ = run(client, handle, "sh", "-c", "head -c 100m /dev/zero | tail > /dev/null")
        assert code == 137
        assert "Out of memory" in (client.info(handle).events or [])
    finally:
        client.destroy(handle)


def test_pids_limit_stops_a_fork_bomb(garden_server):
    client = garden_server.client()
    handle = client.create(models.ContainerSpec(limits=models.Limits(pid=models.PidLimits(max=20))))
    try:
        code, out, err = run(client, handle, "sh", "-c",
                             "bomb() { bomb | bomb & }; bomb; sleep 0.5; "
                             "cat /proc/self/status >/dev/null; echo survived")
        metrics = client.metrics(handle)
        assert metrics.pids.max == 20
        assert metrics.pids.current <= 20
        assert "fork" in err or "Resource temporarily unavailable" in err
    finally:
        client.destroy(handle)


def test_stop_terminates_processes_and_marks_stopped(garden_server, container):
    client = garden_server.client()
    process = client.run(container, models.ProcessSpec(path="sleep", args=["1000"]))
    client.stop(container, kill=False)
    assert process.wait() == 143
    assert client.info(container).state == "stopped"


def test_bind_mounts_read_only_and_read_write(garden_server, tmp_path):
    client = garden_server.client()
    src = tmp_path / "shared"
    src.mkdir(mode=0o777)  # container root is not host root (user namespace): it needs the permission to write
    src.chmod(0o777)
    (src / "hello").write_text("from host\n")
    mounts = [models.BindMount(src_path=str(src), dst_path="/mnt/ro"),
              models.BindMount(src_path=str(src), dst_path="/mnt/rw", mode=models.BIND_MOUNT_RW)]
    handle = client.create(models.ContainerSpec(bind_mounts=mounts))
    try:
        code, out, _ = run(client, handle, "sh", "-c",
                           "cat /mnt/ro/hello; touch /mnt/ro/x 2>/dev/null && echo wrote-ro; "
                           "echo back > /mnt/rw/written && echo wrote-rw")
        assert code == 0
        assert out == "from host\nwrote-rw\n"
        assert (src / "written").read_text() == "back\n"
    finally:
        client.destroy(handle)


def test_failed_create_leaves_nothing_behind(garden_server):
    client = garden_server.client()
    spec = models.ContainerSpec(handle="half-made", rootfs="/does/not/exist")
    with pytest.raises(errors.GardenError, match="/does/not/exist"):
        client.create(spec)
    bad_mount = models.ContainerSpec(handle="half-made",
                                     bind_mounts=[models.BindMount(src_path="/does/not/exist", dst_path="/x")])
    with pytest.raises(errors.GardenError, match="does not exist"):
        client.create(bad_mount)
    assert "half-made" not in client.list({"garden.state": "all"})
    assert not cgroup_dirs("half-made")
    assert not os.path.exists(os.path.join(garden_server.depot, "half-made"))
    assert not os.path.exists(os.path.join(garden_server.store, "containers", "half-made"))


def test_unprivileged_container_sees_its_own_cgroups_read_only(garden_server):
    client = garden_server.client()
    limits = models.Limits(memory=models.MemoryLimits(limit_in_bytes=48 << 20), pid=models.PidLimits(max=30))
    handle = client.create(models.ContainerSpec(limits=limits))
    try:
        code, out, err = run(client, handle, "sh", "-c",
                             "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
                             "echo 1 > /sys/fs/cgroup/pids/pids.max || echo refused; "
                             "grep -c ' - cgroup ' /proc/self/mountinfo")
        assert code == 0, err
        lines = out.split()
        assert lines[:3] == [str(48 << 20), "30", "refused"]
        assert int(lines[3]) >= 4
    finally:
        client.destroy(handle)
    privileged = client.create(models.ContainerSpec(privileged=True))
    try:
        code, out, _ = run(client, privileged, "sh", "-c", "grep -c ' - cgroup ' /proc/self/mountinfo || true")
        assert out.strip() == "0"
    finally:
        client.destroy(privileged)
