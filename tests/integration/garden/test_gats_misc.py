"""GATS `maskedpaths_test.go`, `debug_test.go` and `rootfs_test.go` mirrored in Python against the real daemon.

rootfs_test.go pulls docker:///cloudfoundry/garden-rootfs for its image config (PATH, TEST) and its opaque
whiteout; offline that image is a local OCI layout (`oci:///…`) with the same config and layers. Its private
image specs run against a local token-auth registry (tests/support) as the daemon's default registry.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator

import pytest

from garden import errors, models
from garden.daemon_process import GardenServer
from tests.integration.garden.gats_support import build_image, run_for_stdout, run_process
from tests.support.fixtures import oci_busybox_layout, upstream_registry_auth  # noqa: F401 - fixtures
from tests.support.oci_images import (
    TarEntry,
    busybox_entries,
)


@pytest.fixture
def container(make) -> str:
    """GATS' suite-level JustBeforeEach: no users added (conftest's container adds alice, as Lifecycle does)."""
    return make(user=False)


# ----------------------------------------------------------------------------------- maskedpaths_test.go


def test_masks_proc_files_with_null_device(client, container):
    """MaskedPaths when the container is unprivileged masks certain files in /proc with a null character
    device."""
    for path in ("/proc/kcore", "/proc/sched_debug", "/proc/timer_list", "/proc/keys"):
        if run_process(client, container, models.ProcessSpec(path="test", args=["-f", path]))[0] == 0:
            out = run_for_stdout(client, container, models.ProcessSpec(path="stat", args=[path]))
            assert "character special file" in out and "Device type: 1,3" in out, (path, out)
    # GATS' `test -f` is false for a masked (character device) path, so the loop above only proves that no
    # unmasked regular file is left; check the mask itself for the files this host's /proc has.
    for path in ("/proc/kcore", "/proc/sched_debug", "/proc/timer_list", "/proc/keys"):
        if os.path.exists(path):
            out = run_for_stdout(client, container, models.ProcessSpec(path="stat", args=[path]))
            assert "character special file" in out and "Device type: 1,3" in out, (path, out)


def test_masks_timer_stats_if_exists(client, container):
    """MaskedPaths when the container is unprivileged masks certain /proc/timer_stats with a null character device
    if exists."""
    code, out, err = run_process(client, container, models.ProcessSpec(path="stat", args=["/proc/timer_stats"]))
    if code == 0:
        assert "character special file" in out and "Device type: 1,3" in out, out
    else:
        assert "No such file or directory" in err, err  # gone since Linux 4.11


def test_no_access_to_latency_stats(client, container):
    """MaskedPaths when the container is unprivileged does not provide access to /proc/latency_stats."""
    code, out, _ = run_process(client, container, models.ProcessSpec(path="sh", args=[
        "-c", "if [ -e /proc/latency_stats ]; then stat /proc/latency_stats ; else echo notexist && exit 42; fi"]))
    if code == 0:
        assert "character special file" in out and "Device type: 1,3" in out, out
    else:
        assert code == 42, f"unexpected exit status {code}"
        assert "notexist\n" in out


def test_masks_dirs(client, container):
    """MaskedPaths when the container is unprivileged masks certain dirs."""
    for path in ("/proc/scsi", "/sys/firmware"):
        if not os.path.exists(path):
            # GATS' runForStdout would fail on such a host (ls exits 1) whatever the daemon does: this kernel has
            # no /proc/scsi, and nothing can be masked that is not there. Assert it is not there either.
            assert run_process(client, container, models.ProcessSpec(path="ls", args=["-A", path]))[0] != 0
            continue
        out = run_for_stdout(client, container, models.ProcessSpec(path="ls", args=["-A", path]))
        assert out == "", f"directory {path} is not empty: {out!r}"


# ----------------------------------------------------------------------------------- debug_test.go


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_debug_memory_allocated(tmp_path, busybox_rootfs):
    """Debug Memory should have non-zero allocated memory."""
    port = free_port()
    server = GardenServer(tmp_path / "garden", busybox_rootfs,
                          ["--disable-networking", "--debug-bind-port", str(port)])
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/vars", timeout=10) as response:
            debug = json.loads(response.read())
        assert debug["memstats"]["Alloc"] != 0, debug["memstats"]
    finally:
        server.stop()


# ----------------------------------------------------------------------------------- rootfs_test.go


GARDEN_ROOTFS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/bin:/from-dockerfile"
GARDEN_ROOTFS_TEST = "second-test-from-dockerfile:test-from-dockerfile"


@pytest.fixture(scope="module")
def garden_rootfs_image(tmp_path_factory) -> str:
    """docker:///cloudfoundry/garden-rootfs as far as rootfs_test.go looks at it: its Env, and a /test directory
    made opaque by a later layer (`/test/.wh..wh..opq`) that then adds /test/foo."""
    base = busybox_entries() + [TarEntry("test", "dir", mode=0o755), TarEntry("test/hidden", data=b"old\n")]
    top = [TarEntry("test", "dir", mode=0o755), TarEntry("test/.wh..wh..opq"), TarEntry("test/foo", data=b"foo\n")]
    return build_image(tmp_path_factory.mktemp("oci") / "garden-rootfs", [base, top],
                       [f"PATH={GARDEN_ROOTFS_PATH}", f"TEST={GARDEN_ROOTFS_TEST}"])


@pytest.mark.skip(reason="GATS skips it too unless AZURE_REGISTRY_USERNAME/PASSWORD are set; needs the internet")
def test_private_azure_image():
    """Rootfses when the rootfs path is a private azure image URL should succeed."""


def test_path_from_docker_image(client, make, garden_rootfs_image):
    """Rootfses when the rootfs path is a docker image URL and the image specifies $PATH $PATH is taken from the
    docker image."""
    handle = make(user=False, image=models.ImageRef(uri=garden_rootfs_image))
    out = run_for_stdout(client, handle, models.ProcessSpec(user="root", path="/bin/sh", args=["-c", "echo $PATH"]))
    assert GARDEN_ROOTFS_PATH in out, out


def test_env_from_docker_image(client, make, garden_rootfs_image):
    """Rootfses when the rootfs path is a docker image URL and the image specifies $PATH $TEST is taken from the
    docker image."""
    handle = make(user=False, image=models.ImageRef(uri=garden_rootfs_image))
    out = run_for_stdout(client, handle, models.ProcessSpec(user="root", path="/bin/sh", args=["-c", "echo $TEST"]))
    assert GARDEN_ROOTFS_TEST in out, out


def test_opaque_whiteouts(client, make, garden_rootfs_image):
    """Rootfses and the Docker image contains opaque whiteouts handles them correctly."""
    handle = make(user=False, image=models.ImageRef(uri=garden_rootfs_image))
    assert run_process(client, handle, models.ProcessSpec(path="ls", args=["/test/foo"]))[0] == 0
    # and what the opaque directory hid from the lower layer is gone
    assert run_process(client, handle, models.ProcessSpec(path="ls", args=["/test/hidden"]))[0] != 0


@pytest.fixture(scope="module")
def private_registry_garden(request, tmp_path_factory, busybox_rootfs) -> Iterator[GardenServer]:
    """A daemon whose default registry is the local token-auth registry (tests/support: user alice, password
    secret) holding private/busybox:v1."""
    host = request.getfixturevalue("upstream_registry_auth").host
    server = GardenServer(tmp_path_factory.mktemp("garden-private"), busybox_rootfs,
                          ["--disable-networking", "--registry-mirror", host, "--insecure-registry", host])
    with server.running():
        yield server


def test_private_image_pulls(private_registry_garden):
    """Rootfses when the rootfs path is a docker image URL and the image is private successfully pulls the
    image."""
    client = private_registry_garden.client()
    handle = client.create(models.ContainerSpec(image=models.ImageRef(
        uri="docker:///private/busybox#v1", username="alice", password="secret")))
    client.destroy(handle)


def test_private_image_wrong_credentials_fail(private_registry_garden):
    """Rootfses when the rootfs path is a docker image URL and the image is private but the credentials are
    incorrect fails."""
    client = private_registry_garden.client()
    with pytest.raises(errors.GardenError) as failure:
        handle = client.create(models.ContainerSpec(image=models.ImageRef(uri="docker:///private/busybox#v1")))
        client.destroy(handle)  # only reached if the create wrongly succeeded
    assert "denied access" in str(failure.value), failure.value  # refused for the credentials, not unreachable
