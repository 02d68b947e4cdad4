"""GATS `peas_test.go` mirrored in Python against the real daemon (one fresh sandbox container per spec).

GATS' peaImage ($GARDEN_TEST_ROOTFS) is a busybox rootfs with busybox's users (operator is 37:37); here it is a
copy of the busybox rootfs directory with that user added. The "/etc/passwd is empty" image
(docker:///cloudfoundry/garden-rootfs in GATS) is a copy whose /etc/passwd is empty.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from garden import errors, models
from tests.integration.garden.gats_support import Buffer, run_for_stdout, run_process

MB = 1024 * 1024
GB = 1024 * MB


NO_IMAGE = models.ImageRef()


@pytest.fixture(scope="module")
def pea_image(tmp_path_factory, busybox_rootfs) -> models.ImageRef:
    root = tmp_path_factory.mktemp("pea") / "rootfs"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    with open(root / "etc" / "passwd", "a") as f:
        f.write("operator:x:37:37:operator:/var:/bin/sh\n")
    with open(root / "etc" / "group", "a") as f:
        f.write("operator:x:37:\n")
    return models.ImageRef(uri=str(root))


@pytest.fixture(scope="module")
def empty_passwd_image(tmp_path_factory, busybox_rootfs) -> models.ImageRef:
    root = tmp_path_factory.mktemp("pea-empty-passwd") / "rootfs"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    (root / "etc" / "passwd").write_text("")
    return models.ImageRef(uri=str(root))


@pytest.fixture
def container(make) -> str:
    """GATS' suite-level JustBeforeEach: no users added (conftest's container adds alice, as Lifecycle does)."""
    return make(user=False)


def get_ns(client, handle: str, ns: str, image: models.ImageRef) -> str:
    return run_for_stdout(client, handle, models.ProcessSpec(path="readlink", args=[f"/proc/self/ns/{ns}"],
                                                             image=image))


def read_file(client, handle: str, path: str, image: models.ImageRef) -> str:
    return run_for_stdout(client, handle, models.ProcessSpec(path="cat", args=[path], image=image))


def append_file(client, handle: str, path: str, content: str, image: models.ImageRef) -> None:
    run_for_stdout(client, handle, models.ProcessSpec(path="sh", args=["-c", f"echo {content} >> {path}"],
                                                      image=image))


# ----------------------------------------------------------------------------------- sharing of namespaces


@pytest.mark.parametrize("privileged", [False, True], ids=["unprivileged", "privileged"])
def test_shares_all_namespaces_but_mount(client, make, pea_image, privileged):
    """Partially shared containers (peas) sharing of namespaces [when the sandbox container is privileged] runs a
    process that shares all of the namespaces besides the mount one."""
    handle = make(user=False, privileged=privileged)
    assert get_ns(client, handle, "mnt", NO_IMAGE) != get_ns(client, handle, "mnt", pea_image)
    for ns in ("net", "ipc", "pid", "user", "uts"):
        assert get_ns(client, handle, ns, NO_IMAGE) == get_ns(client, handle, ns, pea_image), ns


def test_runs_in_its_own_rootfs(client, container, pea_image):
    """Partially shared containers (peas) runs a process in its own rootfs."""
    out = run_for_stdout(client, container, models.ProcessSpec(path="busybox", image=pea_image))
    assert "BusyBox v" in out, out


# ----------------------------------------------------------------------------------- user and group


ID_SCRIPT = ["-c", "echo -n $(id -u):$(id -g)"]


def test_runs_as_root_by_default(client, container, pea_image):
    """Partially shared containers (peas) pea process user and group runs the process as uid and gid 0 by
    default."""
    assert "0:0" in run_for_stdout(client, container, models.ProcessSpec(path="sh", args=ID_SCRIPT, image=pea_image))


def test_runs_as_given_uid_gid(client, container, pea_image):
    """Partially shared containers (peas) pea process user and group when a uid:gid is provided runs the process
    as the specified uid and gid."""
    out = run_for_stdout(client, container, models.ProcessSpec(path="sh", args=ID_SCRIPT, user="1001:1002",
                                                               image=pea_image))
    assert "1001:1002" in out, out


def test_runs_as_named_user(client, container, pea_image):
    """Partially shared containers (peas) pea process user and group when a username is provided does not return
    an error."""
    out = run_for_stdout(client, container, models.ProcessSpec(
        user="operator", path="sh", args=["-c", "echo -n $(id -u):$(id -g); whoami"], image=pea_image))
    assert "37:37operator" in out, out


def test_empty_passwd_root_runs(client, container, empty_passwd_image):
    """Partially shared containers (peas) pea process user and group when a username is provided but /etc/passwd
    is empty can run when the user is root."""
    out = run_for_stdout(client, container, models.ProcessSpec(user="root", path="echo", args=["hello"],
                                                               image=empty_passwd_image))
    assert "hello" in out, out


def test_empty_passwd_non_root_fails(client, container, empty_passwd_image):
    """Partially shared containers (peas) pea process user and group when a username is provided but /etc/passwd
    is empty cannot run when the user is non-root."""
    with pytest.raises(errors.GardenError,
                       match="unable to find user invalid-user: no matching entries in passwd file"):
        client.run(container, models.ProcessSpec(user="invalid-user", path="echo", args=["hello"],
                                                 image=empty_passwd_image))


# ----------------------------------------------------------------------------------- Wait and IO, files, cwd


def test_returns_exit_code(client, container, pea_image):
    """Partially shared containers (peas) pea process Wait and IO returns the process exit code."""
    assert run_process(client, container, models.ProcessSpec(path="sh", args=["-c", "exit 123"],
                                                             image=pea_image))[0] == 123


def test_streams_stdout_and_stderr(client, container, pea_image):
    """Partially shared containers (peas) pea process Wait and IO streams stdout and stderr back to the client."""
    code, out, err = run_process(client, container, models.ProcessSpec(
        path="sh", args=["-c", "echo stdout && echo stderr >&2"], image=pea_image))
    assert code == 0
    assert "stdout\n" in out and "stderr\n" in err, (out, err)


@pytest.mark.parametrize("path", ["/etc/hosts", "/etc/resolv.conf"])
def test_bind_mounts_containers_etc_file(client, container, pea_image, path):
    """Partially shared containers (peas) bind mounts the same /etc/hosts [/etc/resolv.conf] file as the
    container."""
    original_in_container = read_file(client, container, path, NO_IMAGE)
    original_in_pea = read_file(client, container, path, pea_image)
    assert original_in_container == original_in_pea
    append_file(client, container, path, "foobar", pea_image)
    in_pea = read_file(client, container, path, pea_image)
    assert in_pea != original_in_pea
    assert in_pea == read_file(client, container, path, NO_IMAGE)


def test_working_dir_defaults_to_root(client, container, pea_image):
    """Partially shared containers (peas) when no working directory is specified defaults to /."""
    assert "/\n" in run_for_stdout(client, container, models.ProcessSpec(path="pwd", image=pea_image))


def test_sends_term_signal(client, container, pea_image):
    """Partially shared containers (peas) signalling sends a TERM signal to the process if requested."""
    out = Buffer()
    script = """
    trap 'echo termed; exit 42' SIGTERM

    while true; do
        echo waiting
        /bin/sleep 1
    done
    """
    process = client.run(container, models.ProcessSpec(path="sh", args=["-c", script], image=pea_image), stdout=out)
    assert out.say("waiting", 15)
    process.signal(models.SIGNAL_TERMINATE)
    assert out.say("termed", 2), out.text()
    assert process.wait(15) == 42


# ----------------------------------------------------------------------------------- Limits


LIMITS = models.Limits(
    bandwidth=models.BandwidthLimits(rate=MB, burst=MB),
    cpu=models.CPULimits(limit_in_shares=1024),
    disk=models.DiskLimits(byte_hard=GB),
    memory=models.MemoryLimits(limit_in_bytes=64 * MB),
    pid=models.PidLimits(max=50),
)


@pytest.fixture
def limited(make) -> str:
    return make(user=False, limits=LIMITS)


def dd(count: int) -> list[str]:
    return ["if=/dev/urandom", "of=/dev/shm/too-big", "bs=1M", f"count={count}"]


def test_shares_container_limit_by_default(client, limited, pea_image):
    """Partially shared containers (peas) Limits when OverrideContainerLimits is not specified on the pea shares
    that limit with the container."""
    assert run_process(client, limited, models.ProcessSpec(path="dd", args=dd(5)))[0] == 0
    assert run_process(client, limited, models.ProcessSpec(path="dd", args=dd(60), image=pea_image))[0] != 0


def test_empty_override_lifts_memory_limit(client, limited, pea_image):
    """Partially shared containers (peas) Limits when an empty OverrideContainerLimits is specified on the pea does
    not share memory limit with the container."""
    assert run_process(client, limited, models.ProcessSpec(path="dd", args=dd(65), image=pea_image,
                                                           override_limits=models.ProcessLimits()))[0] == 0


def test_empty_override_lifts_pid_limit(client, limited, pea_image):
    """Partially shared containers (peas) Limits when an empty OverrideContainerLimits is specified on the pea is
    not limited in how many processes it can create."""
    script = """
    for i in $(seq 15); do (/bin/sleep 360 &); done;
    until [ $(ps aux | wc -l) -gt 15 ]; do /bin/sleep .5; done
    killall sleep
    """
    assert run_process(client, limited, models.ProcessSpec(path="/bin/sh", args=["-c", script], image=pea_image,
                                                           override_limits=models.ProcessLimits()))[0] == 0


def test_pea_memory_limit_kills(client, limited, pea_image):
    """Partially shared containers (peas) Limits when a memory limit is specified on the pea kills processes that
    exceed that limit."""
    code, out, err = run_process(client, limited, models.ProcessSpec(
        path="sh", args=["-c", "dd if=/dev/urandom of=/dev/shm/too-big bs=1M count=33 && echo hello"],
        image=pea_image, override_limits=models.ProcessLimits(memory=models.MemoryLimits(limit_in_bytes=32 * MB))))
    assert "hello\n" not in out
    assert "Killed\n" in err, err
    assert code != 0


# ----------------------------------------------------------------------------------- destroy, metrics, errors


def test_destroying_sandbox_kills_peas(client, container, pea_image):
    """Partially shared containers (peas) when the sandbox is destroyed kills all associated peas."""
    process = client.run(container, models.ProcessSpec(path="/bin/sleep", args=["10000d"], image=pea_image))
    client.destroy(container)
    assert process.wait(30) == 137


def test_bulk_metrics_of_a_pea(client, make, pea_image):
    """Partially shared containers (peas) Metrics when there is no memory limit on the pea should return bulk
    metrics."""
    handle = make(user=False, limits=models.Limits(memory=models.MemoryLimits(limit_in_bytes=64 * MB)))
    out = Buffer()
    process = client.run(handle, models.ProcessSpec(path="sh", args=["-c", "while true; do ls -la; done"],
                                                    image=pea_image), stdout=out)
    assert out.say("total", 15)
    deadline = time.monotonic() + 15
    while True:
        metrics = client.bulk_metrics([process.id])[process.id]
        assert not isinstance(metrics, errors.GardenError), metrics
        if metrics.memory.get("TotalUsageTowardLimit") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert metrics.memory.get("TotalUsageTowardLimit"), metrics


def test_missing_executable_errors_from_run(client, container, pea_image):
    """Partially shared containers (peas) when the process executable doesn't exist returns an error from Run."""
    with pytest.raises(errors.GardenError, match=re.escape("executable file not found in $PATH")):
        client.run(container, models.ProcessSpec(path="does-not-exist", image=pea_image))
