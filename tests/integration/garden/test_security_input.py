"""Hostile input through the API: escaping tars and bind mounts, setuid binaries, rlimits, unknown users."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import uuid

import pytest

from garden import errors, models
from garden.daemon_process import GardenServer
from tests.garden_server import mounts_under
from tests.integration.garden.test_security import ROOT_HOST_ID, UNPRIVILEGED_CAPS, init_pid, sh, status_fields


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


@pytest.fixture
def container(make):
    return make(user=False)


@pytest.mark.parametrize("name", ["../escape", "/etc/escape", "a/../../escape"])
def test_tar_entries_that_leave_the_destination_are_refused(client, container, name):
    with pytest.raises(errors.GardenError, match="escapes the destination|absolute path"):
        client.stream_in(container, "/tmp/in", tar_of((entry(name), b"x")))
    assert sh(client, container, "ls /tmp/escape /etc/escape /escape")[0] != 0


def test_tar_symlinks_resolve_inside_the_container(client, container, tmp_path):
    marker = f"trellis-escape-{uuid.uuid4().hex}"
    client.stream_in(container, "/tmp/in", tar_of((entry("up", tarfile.SYMTYPE, "../../../../../../.."), b""),
                                                  (entry(f"up/tmp/{marker}"), b"inside")))
    assert not os.path.exists(f"/tmp/{marker}")
    assert sh(client, container, f"cat /tmp/{marker}")[:2] == (0, "inside")
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    with pytest.raises(errors.GardenError, match="File exists"):  # a host path means nothing inside
        client.stream_in(container, "/tmp/in", tar_of((entry("abs", tarfile.SYMTYPE, str(host_dir)), b""),
                                                      (entry(f"abs/{marker}"), b"inside")))
    assert not os.listdir(host_dir)


def test_streamed_files_belong_to_the_user_inside_and_to_maximus_on_the_host(client, garden_server, container):
    client.stream_in(container, "/root/in", tar_of((entry("by-root"), b"r")))
    client.stream_in(container, "/home/alice/in", tar_of((entry("by-alice"), b"a")), user="alice")
    code, out, _ = sh(client, container, "stat -c '%U %G' /root/in/by-root /home/alice/in/by-alice")
    assert (code, out) == (0, "root root\nalice alice\n")
    root = f"/proc/{init_pid(garden_server, container)}/root"
    assert os.stat(f"{root}/root/in/by-root").st_uid == ROOT_HOST_ID
    assert os.stat(f"{root}/home/alice/in/by-alice").st_uid == 1000
    with pytest.raises(errors.GardenError, match="ermission denied"):
        client.stream_in(container, "/root/alice-was-here", tar_of((entry("x"), b"x")), user="alice")
    with pytest.raises(errors.GardenError, match="ermission denied"):
        b"".join(client.stream_out(container, "/root/in/by-root", user="alice"))
    assert b"".join(client.stream_out(container, "/root/in/by-root"))


def test_unknown_users_get_a_clear_error(client, container):
    with pytest.raises(errors.GardenError, match="unable to find user nosuchuser"):
        client.run(container, models.ProcessSpec(path="true", user="nosuchuser")).wait(10)
    with pytest.raises(errors.GardenError, match="unable to find user nosuchuser"):
        client.stream_in(container, "/tmp", tar_of((entry("x"), b"x")), user="nosuchuser")


def test_a_fifo_as_etc_passwd_does_not_hang_process_start(client, container):
    assert sh(client, container, "rm /etc/passwd && mkfifo /etc/passwd")[0] == 0
    assert client.run(container, models.ProcessSpec(path="true")).wait(10) == 0
    with pytest.raises(errors.GardenError, match="unable to find user alice"):
        client.run(container, models.ProcessSpec(path="true", user="alice")).wait(10)


def test_rlimits_above_the_hosts_hard_limit_are_clamped(client, container):
    with open("/proc/self/limits") as f:
        hard = next(line.split()[4] for line in f if line.startswith("Max open files"))
    code, out, _ = sh(client, container, "ulimit -n; ulimit -Hn", rlimits={"nofile": 1 << 40})
    assert (code, out) == (0, f"{hard}\n{hard}\n")


SETUID_COPY = "mkdir -p /opt/suid && cp /bin/busybox /opt/suid/busybox && chmod 4755 /opt/suid/busybox"


def test_setuid_binaries_keep_their_bit_but_give_at_most_container_root(client, container):
    code, _, err = sh(client, container, SETUID_COPY)
    assert code == 0, err
    code, out, _ = sh(client, container, "ls -l /opt/suid/busybox; /opt/suid/busybox cat /proc/self/status",
                      user="alice")
    assert code == 0 and out.startswith("-rwsr-xr-x")
    fields = status_fields(out.split("\n", 1)[1])
    assert int(fields["CapEff"], 16) & ~int(UNPRIVILEGED_CAPS, 16) == 0


def test_bind_mount_destination_through_an_image_symlink_stays_inside(client, busybox_rootfs, tmp_path):
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (rootfs / "escape").symlink_to(host_dir)  # absolute: on the host it would point at host_dir
    (rootfs / "relative").symlink_to("etc")
    source = tmp_path / "source"
    source.mkdir()
    (source / "file").write_text("bound\n")
    before = client.list({"garden.state": "all"})
    with pytest.raises(errors.GardenError, match="mount point /escape/inside: a parent is not a directory"):
        client.create(models.ContainerSpec(rootfs=str(rootfs), bind_mounts=[
            models.BindMount(src_path=str(source), dst_path="/escape/inside")]))
    assert client.list({"garden.state": "all"}) == before
    assert not os.listdir(host_dir) and not mounts_under(str(host_dir))
    handle = client.create(models.ContainerSpec(rootfs=str(rootfs), bind_mounts=[
        models.BindMount(src_path=str(source), dst_path="/relative/inside")]))
    try:
        assert sh(client, handle, "cat /etc/inside/file")[:2] == (0, "bound\n")
        assert not os.path.exists(rootfs / "etc" / "inside")
    finally:
        client.destroy(handle)


def test_missing_bind_mount_source_is_a_clear_error_and_leaves_nothing(client, tmp_path):
    before = client.list({"garden.state": "all"})
    with pytest.raises(errors.GardenError, match="bind mount source .*does-not-exist does not exist"):
        client.create(models.ContainerSpec(bind_mounts=[
            models.BindMount(src_path=str(tmp_path / "does-not-exist"), dst_path="/mnt/x")]))
    assert client.list({"garden.state": "all"}) == before


def test_no_new_privileges_daemon_flag(tmp_path, busybox_rootfs):
    server = GardenServer(tmp_path / "nnp", busybox_rootfs, ["--disable-networking", "--no-new-privileges"])
    server.start()
    client = server.client()
    try:
        handle = client.create(models.ContainerSpec())
        sh(client, handle, SETUID_COPY)
        code, out, _ = sh(client, handle, "/opt/suid/busybox cat /proc/self/status", user="alice")
        fields = status_fields(out)
        assert (code, fields["NoNewPrivs"], fields["Uid"].split()) == (0, "1", ["1000"] * 4)
    finally:
        for handle in client.list({"garden.state": "all"}):
            client.destroy(handle)
        server.stop()
