"""GATS `process_test.go` and `smoke_test.go` mirrored in Python against the real daemon.

GATS creates a fresh container per spec (JustBeforeEach); so do these tests. Helpers mirror GATS' own
(`runProcess`, `runForStdout`, `createUser`, gbytes buffers).
"""

from __future__ import annotations

import pytest

from garden import errors, models
from tests.integration.garden.gats_support import Buffer, run_for_stdout, run_process, sh


def test_sigterm_immediately_after_start(client, container):
    """Process signalling a process can be sent SIGTERM immediately after having been started."""
    process = client.run(container, sh("\n    sleep 10\n    exit 12\n", user="root"), stdout=Buffer())
    process.signal(models.SIGNAL_TERMINATE)
    assert process.wait(30) != 12


def test_bind_mounts_without_image_fail(client, container):
    """Process when we try to create a container process with bind mounts should return an error."""
    spec = models.ProcessSpec(user="root", path="whoami",
                              bind_mounts=[models.BindMount(src_path="src", dst_path="dst")])
    with pytest.raises(errors.GardenError):
        client.run(container, spec, stdout=Buffer())


def test_process_id_from_spec(client, container):
    """Process process ID return a process containing the ID passed in the process spec."""
    process = client.run(container, models.ProcessSpec(id="some-id", path="/bin/true"))
    assert process.id == "some-id"
    process.wait(30)


def test_duplicate_process_id(client, container):
    """Process process ID when two processes with the same ID are running the second process with the same id
    should explode."""
    first = client.run(container, models.ProcessSpec(id="same-id", path="sleep", args=["5"]))
    with pytest.raises(errors.GardenError, match=r"already (in use|exists)"):
        client.run(container, models.ProcessSpec(id="same-id", path="/bin/true"))
    first.signal(models.SIGNAL_KILL)
    first.wait(30)


def test_environment(client, container):
    """Process environment should apply the specified environment."""
    code, out, _ = run_process(client, container, models.ProcessSpec(path="env", env=["TEST=hello", "FRUIT=banana"]))
    assert code == 0
    assert "TEST=hello\nFRUIT=banana" in out, out


def test_merged_environment(client, make):
    """Process environment when the container has container spec environment specified should apply the merged
    environment variables."""
    handle = make(env=["CONTAINER_ENV=1", "TEST=hi"])
    code, out, _ = run_process(client, handle, models.ProcessSpec(path="env", env=["TEST=hello", "FRUIT=banana"]))
    assert code == 0
    assert "CONTAINER_ENV=1\nTEST=hello\nFRUIT=banana" in out, out


def test_wait_not_blocked_by_exited_children(client, container):
    """Process wait does not block in Wait() when all children of the process have exited."""
    script = """
cleanup ()
{
  ps -a >&2
  kill $child_pid
  exit 42
}

trap cleanup TERM
set -x
/bin/sleep 1000 &
child_pid=$!
# Make sure that sleep process has been forked before trapping
while [ ! $(ps -o comm | grep sleep) ] ;do : ; done
# Use stderr to avoid buffering in the shell.
echo trapping >&2
wait
"""
    stderr = Buffer()
    process = client.run(container, models.ProcessSpec(user="root", path="/bin/sh", args=["-c", script]),
                         stderr=stderr)
    assert stderr.say("trapping"), stderr.text()
    process.signal(models.SIGNAL_TERMINATE)
    assert process.wait(20) == 42


def test_user_uid_gid(client, container):
    """Process user when the user is specified in the form uid:gid runs the process as that user."""
    out = run_for_stdout(client, container, sh("echo $(id -u):$(id -g)", user="1001:1002"))
    assert "1001:1002\n" in out, out


def test_user_name_group(client, container):
    """Process user when the user is specified ins the form username:groupname runs the process as that user.

    GATS uses docker:///cloudfoundry/garden-rootfs (testuser 1000, group staff 50); here: our busybox rootfs
    with group staff (gid 50) added and alice (uid 1000)."""
    script = "grep -q '^staff:' /etc/group || echo 'staff:x:50:' >> /etc/group"
    assert run_process(client, container, sh(script, user="root"))[0] == 0
    out = run_for_stdout(client, container, sh("echo $(id -u):$(id -g)", user="alice:staff"))
    assert "1000:50\n" in out, out


def test_default_user_is_root(client, container):
    """Process user when the user is not specified runs the process as root."""
    assert "root\n" in run_for_stdout(client, container, models.ProcessSpec(path="whoami"))


def test_working_dir_exists(client, container):
    """Process working directory when user has access to working directory when working directory exists spawns
    the process."""
    out = run_for_stdout(client, container, models.ProcessSpec(user="alice", dir="/home/alice", path="pwd"))
    assert "/home/alice" in out


def test_working_dir_missing(client, container):
    """Process working directory when user has access to working directory when working directory does not exist
    spawns the process."""
    out = run_for_stdout(client, container,
                         models.ProcessSpec(user="alice", dir="/home/alice/nonexistent", path="pwd"))
    assert "/home/alice/nonexistent" in out


def test_working_dir_created_owned_by_user(client, container):
    """Process working directory when user has access to working directory when working directory does not exist
    is created owned by the requested user."""
    out = run_for_stdout(client, container, sh("ls -la . | head -n 2 | tail -n 1", user="root",
                                               dir="/root/nonexistent"))
    assert "root" in out, out


def _no_permission_dir(client, handle: str) -> None:
    script = "mkdir -p /home/alice/nopermissions && chmod 0555 /home/alice/nopermissions"
    assert run_process(client, handle, sh(script, user="alice"))[0] == 0


def test_working_dir_without_permission(client, container):
    """Process working directory when user does not have access to working directory when working directory does
    exist returns an error."""
    _no_permission_dir(client, container)
    code, _, err = run_process(client, container, models.ProcessSpec(
        user="alice", dir="/home/alice/nopermissions", path="touch", args=["test.txt"]))
    assert code != 0
    assert "Permission denied" in err, err


def test_working_dir_created_below_unwritable_dir(client, container):
    """Process working directory when user does not have access to working directory when working directory does
    not exist should create the working directory, and succeed."""
    _no_permission_dir(client, container)
    code, _, err = run_process(client, container, models.ProcessSpec(
        user="alice", dir="/home/alice/nopermissions/nonexistent", path="touch", args=["test.txt"]))
    assert code == 0, err


def test_default_working_dir_is_home(client, container):
    """Process working directory when the user does not specify the working directory should have the user home
    directory in the output."""
    code, out, _ = run_process(client, container, models.ProcessSpec(user="alice", path="pwd"))
    assert code == 0
    assert "/home/alice" in out


# ----------------------------------------------------------------------------------- smoke_test.go


def test_smoke_run_process(client, container):
    """smoke tests can run a process inside a container."""
    code, out, _ = run_process(client, container, models.ProcessSpec(user="alice", path="whoami"))
    assert code == 0
    assert out == "alice\n"
