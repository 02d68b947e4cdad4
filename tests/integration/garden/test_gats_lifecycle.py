"""GATS `lifecycle_test.go` mirrored in Python against the real daemon (spec names in the test docstrings).

Each test creates its container like GATS' JustBeforeEach (plus `createUser(container, "alice")`) and
destroys it afterwards. Loop counts and `Consistently` windows are shortened; assertions are GATS'.
"""

from __future__ import annotations

import io
import re
import tarfile
import threading
import time
import uuid

import pytest

from garden import errors, models
from tests.integration.garden.gats_support import Buffer, create_user, run_for_stdout, run_process, sh

# ----------------------------------------------------------------------------------- creating containers


def test_create_with_limits_applies_limits(client, make):
    """Lifecycle Creating a container with limits it applies limits if set in the container spec
    (also: ... when In cgroups-v1 it applies limits if set in the container spec)."""
    limits = models.Limits(memory=models.MemoryLimits(limit_in_bytes=128 << 20),
                           cpu=models.CPULimits(limit_in_shares=50))
    handle = make(limits=limits)
    got = client.limits(handle)
    assert got.memory == limits.memory
    assert got.cpu == limits.cpu


def test_create_without_limits_reports_none(client, container):
    """Lifecycle Creating a container with limits does not apply limits if not set in container spec."""
    got = client.limits(container)
    assert got.disk == models.DiskLimits()
    assert got.bandwidth == models.BandwidthLimits()


def test_create_and_destroy_sequentially(client, make):
    """Lifecycle Creating a container with limits should be able to create and destroy containers sequentially."""
    make(limits=models.Limits(memory=models.MemoryLimits(limit_in_bytes=128 << 20),
                              cpu=models.CPULimits(limit_in_shares=50)))
    disk = models.Limits(disk=models.DiskLimits(byte_hard=2 << 30))
    first = client.create(models.ContainerSpec(limits=disk))
    second = client.create(models.ContainerSpec(limits=disk))
    client.destroy(first)
    client.destroy(second)


def test_duplicate_handle_message(client, container):
    """Lifecycle Creating a container with a duplicate handle returns a meaningful error message."""
    with pytest.raises(errors.GardenError) as e:
        client.create(models.ContainerSpec(handle=container))
    assert str(e.value) == f"Handle '{container}' already in use"


@pytest.mark.parametrize("kind", ["u", "g"])
def test_uid_gid_mappings(client, container, kind):
    """Lifecycle Creating a container with uid/gid mappings should have the proper uid mappings / gid mappings."""
    out = run_for_stdout(client, container, models.ProcessSpec(path="cat", args=[f"/proc/self/{kind}id_map"]))
    assert re.search(r"0\s+4294967294\s+1\n\s+1\s+1\s+4294967293", out), out


def test_destroy_unknown_is_container_not_found(client, container):
    """Lifecycle returns garden.ContainerNotFound when destroying a container that doesn't exist."""
    with pytest.raises(errors.ContainerNotFoundError) as e:
        client.destroy("potato-sandwhich-policy")
    assert e.value.handle == "potato-sandwhich-policy"


def test_dev_shm_is_tmpfs(client, container):
    """Lifecycle provides /dev/shm as tmpfs in the container."""
    spec = models.ProcessSpec(user="alice", path="dd",
                              args=["if=/dev/urandom", "of=/dev/shm/some-data", "count=64", "bs=1k"])
    assert run_process(client, container, spec)[0] == 0
    out = run_for_stdout(client, container, models.ProcessSpec(user="alice", path="cat", args=["/proc/mounts"]))
    assert "tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime" in out, out


def test_hostname_is_handle(client, container):
    """Lifecycle gives the container a hostname based on its handle."""
    out = run_for_stdout(client, container, models.ProcessSpec(user="alice", path="hostname"))
    assert f"{container}\n" in out


def test_pid1_is_garden_init(client, container):
    """Lifecycle runs garden-init as pid 1."""
    out = run_for_stdout(client, container, models.ProcessSpec(path="head", args=["-n1", "/proc/1/status"]))
    assert "garden-init" in out, out


def test_long_handle_hostname_uses_last_49_chars(client, make):
    """Lifecycle when the handle is bigger than 49 characters should use the last 49 characters of the handle
    as the hostname."""
    handle = make(handle="7132-ec774112a9cd-101f8293-230e-4fa8-4138-e8244e6dcfa1")
    out = run_for_stdout(client, handle, models.ProcessSpec(user="alice", path="hostname"))
    assert "ec774112a9cd-101f8293-230e-4fa8-4138-e8244e6dcfa1" in out


def test_list_includes_container(client, container):
    """Lifecycle and sending a List request includes the created container."""
    assert container in client.list()


def test_info_state_active(client, container):
    """Lifecycle and sending an Info request returns the container's info."""
    assert client.info(container).state == "active"


def test_attach_unknown_process(client, container):
    """Lifecycle attaching to a process when the process doesn't exist returns a ProcessNotFound error."""
    with pytest.raises(errors.ProcessNotFoundError) as e:
        client.attach(container, "idontexist")
    assert e.value.process_id == "idontexist"


# ----------------------------------------------------------------------------------- running a process


def test_run_as_root(client, container):
    """Lifecycle running a process when root is requested runs as root inside the container."""
    assert "root\n" in run_for_stdout(client, container, models.ProcessSpec(path="whoami", user="root"))


def test_streams_output_and_exit_status(client, container):
    """Lifecycle running a process streams output back and reports the exit status."""
    code, out, err = run_process(client, container, sh(
        "sleep 0.5; echo $FIRST; sleep 0.5; echo $SECOND >&2; sleep 0.5; exit 42",
        user="alice", env=["FIRST=hello", "SECOND=goodbye"]))
    assert code == 42
    assert "hello\n" in out
    assert "goodbye\n" in err


def test_can_use_dev_stdin(client, container):
    """Lifecycle running a process can use /dev/stdin."""
    stdout = Buffer()
    process = client.run(container, models.ProcessSpec(user="alice", path="cat", args=["/dev/stdin"]), stdout=stdout)
    process.write_stdin(b"potato\n")
    assert stdout.say("potato")
    process.close_stdin()
    assert process.wait(30) == 0


def test_can_use_dev_stdout(client, container):
    """Lifecycle running a process can use /dev/stdout."""
    code, out, _ = run_process(client, container, sh("echo -n potato >/dev/stdout", user="alice"))
    assert code == 0
    assert "potato" in out


def test_can_use_dev_stderr(client, container):
    """Lifecycle running a process can use /dev/stderr."""
    code, _, err = run_process(client, container, sh("echo -n cake >/dev/stderr", user="alice"))
    assert code == 0
    assert "cake" in err


def test_multiple_attaches_all_get_exit_code(client, container):
    """Lifecycle running a process when multiple clients attach to the same process all clients attached should
    get the exit code."""
    process = client.run(container, sh("sleep 2; exit 12"))
    codes: list[object] = []

    def attach() -> None:
        try:
            codes.append(client.attach(container, process.id).wait(30))
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            codes.append(e)

    threads = [threading.Thread(target=attach) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert codes == [12] * 6


def test_wait_repeatable(client, container):
    """Lifecycle running a process when multiple clients attach to the same process should be able to get the
    exitcode multiple times on the same process."""
    process = client.run(container, sh("sleep 2; exit 12"))
    assert [process.wait(30) for _ in range(3)] == [12, 12, 12]


def test_all_attached_clients_get_stdout_and_stderr(client, container):
    """Lifecycle running a process all attached clients should get stdout and stderr."""
    run_out, run_err, att_out, att_err = Buffer(), Buffer(), Buffer(), Buffer()
    process = client.run(container, sh("/bin/sleep 1; for i in $(seq 1 10); do echo $i; echo $i >&2; done"),
                         stdout=run_out, stderr=run_err)
    attached = client.attach(container, process.id, stdout=att_out, stderr=att_err)
    assert process.wait(30) == 0
    assert attached.wait(30) == 0
    expected = "".join(f"{i}\n" for i in range(1, 11))
    assert [b.text() for b in (run_out, att_out, run_err, att_err)] == [expected] * 4


def test_all_attached_clients_get_10mb(client, container):
    """(A GATS variant of the spec above: 10 MB on each stream, to both the run and the attach.)"""
    length = 10_000_000
    run_out, run_err, att_out, att_err = io.BytesIO(), io.BytesIO(), io.BytesIO(), io.BytesIO()
    process = client.run(container, sh(f'sleep 1; printf "%0{length}d" 1; printf "%0{length}d" 1 >&2'),
                         stdout=run_out, stderr=run_err)
    attached = client.attach(container, process.id, stdout=att_out, stderr=att_err)
    assert process.wait(60) == 0
    assert attached.wait(60) == 0
    assert [len(b.getvalue()) for b in (run_out, att_out, run_err, att_err)] == [length] * 4


TRAP_TERM = """
trap 'echo termed; /bin/sleep 1; exit 42' SIGTERM
while true; do
  echo waiting
  sleep 1
done
"""


@pytest.mark.parametrize("user", ["alice", "root"])
def test_term_signal(client, container, user):
    """Lifecycle running a process sends a TERM signal to the process if requested
    (and: ... sends a TERM signal to the process run by root if requested)."""
    stdout = Buffer()
    process = client.run(container, sh(TRAP_TERM, user=user), stdout=stdout)
    assert stdout.say("waiting")
    process.signal(models.SIGNAL_TERMINATE)
    assert stdout.say("termed", 2)
    assert process.wait(10) == 42


def _remove_bin_kill(client, handle: str) -> None:
    assert run_process(client, handle, models.ProcessSpec(user="root", path="rm", args=["/bin/kill"]))[0] == 0


def _process_is_gone(client, handle: str, prefix: str) -> bool:
    for _ in range(3):  # a short Consistently
        out = run_for_stdout(client, handle, models.ProcessSpec(user="alice", path="ps", args=["ax", "-o", "args="]))
        if prefix in out:
            return False
    return True


def test_kill_signal_without_bin_kill(client, container):
    """Lifecycle running a process even when /bin/kill does not exist sends a KILL signal to the process if
    requested."""
    _remove_bin_kill(client, container)
    marker = str(uuid.uuid4())
    stdout = Buffer()
    process = client.run(container, sh(f"echo {marker}\ntrap wait SIGTERM\nwhile true; do\n  echo waiting\n"
                                       "  /bin/sleep 1\ndone", user="alice"), stdout=stdout)
    assert stdout.say("waiting")
    process.signal(models.SIGNAL_KILL)
    assert process.wait(10) == 137
    assert _process_is_gone(client, container, marker)


def test_terminate_signal_without_bin_kill(client, container):
    """Lifecycle running a process even when /bin/kill does not exist sends a TERMINATE signal to the process if
    requested."""
    _remove_bin_kill(client, container)
    marker = str(uuid.uuid4())
    stdout = Buffer()
    process = client.run(container, sh(f"echo {marker}\nwhile true; do\n  echo waiting\n  /bin/sleep 1\ndone",
                                       user="alice"), stdout=stdout)
    assert stdout.say("waiting")
    process.signal(models.SIGNAL_TERMINATE)
    assert process.wait(10) != 0
    assert _process_is_gone(client, container, marker)


def test_killed_process_without_streaming_goes_away(client, container):
    """Lifecycle running a process even when /bin/kill does not exist when killing a process that does not use
    streaming goes away."""
    _remove_bin_kill(client, container)
    buff = Buffer()
    process = client.run(container, sh("while true; do echo stillhere; sleep 1; done", user="alice"), stdout=buff)
    assert buff.say("stillhere")
    process.signal(models.SIGNAL_KILL)
    assert process.wait(30) != 0
    seen = len(buff.text())
    time.sleep(1.5)  # GATS: Consistently(buff, "5s").ShouldNot(Say("stillhere"))
    assert "stillhere" not in buff.text()[seen:]


def test_kill_race(client, container):
    """Lifecycle running a process avoids a race condition when sending a kill signal."""
    for _ in range(20):
        process = client.run(container, sh('while true; do echo -n "x"; sleep 1; done', user="alice"),
                             stdout=Buffer(), stderr=Buffer())
        process.signal(models.SIGNAL_KILL)
        assert process.wait(30) != 0


def test_tty_full_output(client, container):
    """Lifecycle running a process collects the process's full output when tty is requested."""
    for _ in range(10):
        out = run_for_stdout(client, container, sh('seq -s " " 10000', user="alice", tty=models.TTYSpec()))
        assert "9999 10000" in out


def test_full_output_of_quick_exit(client, container):
    """Lifecycle running a process collects the process's full output, even if it exits quickly after."""
    for _ in range(20):
        stdout = Buffer()
        process = client.run(container, models.ProcessSpec(user="alice", path="echo", args=["hi stdout"]),
                             stdout=stdout)
        assert process.wait(30) == 0
        assert "hi stdout" in stdout.text()
    for _ in range(20):  # the older GATS form of this spec: stdin echoed by cat
        stdout = Buffer()
        process = client.run(container, sh("cat <&0", user="alice"), stdin=b"hi stdout", stdout=stdout,
                             stderr=Buffer())
        assert process.wait(30) == 0
        assert "hi stdout" in stdout.text()


def test_streams_stdin(client, container):
    """Lifecycle running a process streams input to the process's stdin."""
    stdout = Buffer()
    process = client.run(container, sh("cat <&0", user="alice"), stdout=stdout)
    process.write_stdin(b"hello\nworld\n")
    assert stdout.say("hello\nworld")
    process.close_stdin()
    assert process.wait(30) == 0


def test_exit_status_while_stdin_written(client, container):
    """Lifecycle running a process forwards the exit status even if stdin is still being written."""
    for _ in range(10):
        process = client.run(container, models.ProcessSpec(user="alice", path="ls"), stdin=b"x" * 1024)
        assert process.wait(30) == 0


STTY_LOOP = "while true; do\n  stty -a\n  sleep 1\ndone"


def test_tty_default_window_size(client, container):
    """Lifecycle running a process with a tty executes the process with a raw tty with the default window size."""
    stdout = Buffer()
    process = client.run(container, sh(STTY_LOOP, user="alice", tty=models.TTYSpec()), stdout=stdout)
    try:
        assert stdout.say("rows 24; columns 80;", 3), stdout.text()
    finally:
        process.signal(models.SIGNAL_KILL)
        process.wait(10)


def test_tty_given_window_size(client, container):
    """Lifecycle running a process with a tty executes the process with a raw tty with the given window size."""
    stdout = Buffer()
    tty = models.TTYSpec(models.WindowSize(columns=123, rows=456))
    process = client.run(container, sh(STTY_LOOP, user="alice", tty=tty), stdout=stdout)
    try:
        assert stdout.say("rows 456; columns 123;", 3), stdout.text()
    finally:
        process.signal(models.SIGNAL_KILL)
        process.wait(10)


def test_tty_resize(client, container):
    """Lifecycle running a process with a tty can have its terminal resized."""
    stdout = Buffer()
    script = 'trap "stty -a" SIGWINCH\nwhile true; do\n  echo waiting\n  if read; then\n    exit 0\n  fi\ndone'
    tty = models.TTYSpec(models.WindowSize(columns=13, rows=46))
    process = client.run(container, sh(script, user="alice", tty=tty), stdout=stdout)
    assert stdout.say("waiting")
    process.set_tty(123, 456)
    assert stdout.say("rows 456; columns 123;"), stdout.text()
    process.write_stdin(b"ok\n")
    assert process.wait(10) == 0


def test_tty_all_attached_clients_get_output(client, container):
    """Lifecycle running a process with a tty all attached clients should get stdout and stderr."""
    run_out, att_out = Buffer(), Buffer()
    script = "\nread -s\n\nfor i in $(seq 1 5); do\n\techo $i\n\techo $i >&2\ndone\n"
    process = client.run(container, sh(script, tty=models.TTYSpec()), stdout=run_out, stderr=Buffer())
    attached = client.attach(container, process.id, stdout=att_out, stderr=Buffer())
    process.write_stdin(b"ok\n")
    assert process.wait(30) == 0
    assert attached.wait(30) == 0
    expected = r"(ok\r\n)?1\r\n1\r\n2\r\n2\r\n3\r\n3\r\n4\r\n4\r\n5\r\n5\r\n"
    assert re.match(expected, run_out.text()), run_out.text()
    assert re.match(expected, att_out.text()), att_out.text()


def test_working_directory(client, container):
    """Lifecycle running a process with a working directory executes with the working directory as the dir."""
    assert "/usr\n" in run_for_stdout(client, container, models.ProcessSpec(user="alice", path="pwd", dir="/usr"))


# ----------------------------------------------------------------------------------- stop


def test_stop_terminates_all_processes(client, container):
    """Lifecycle running a process and then sending a stop request terminates all running processes."""
    stdout = Buffer()
    process = client.run(container, sh("trap 'exit 42' SIGTERM\nwhile true; do\n  echo waiting\n  sleep 1\ndone",
                                       user="alice"), stdout=stdout)
    assert stdout.say("waiting", 30)
    client.stop(container, kill=False)
    assert process.wait(15) == 42


def test_stop_terminates_children_recursively(client, container):
    """Lifecycle running a process and then sending a stop request recursively terminates all child processes."""
    stderr = Buffer()
    script = ("trap wait SIGTERM\nsh -c 'trap wait SIGTERM; sleep 100 & wait' &\n"
              "echo waiting >&2\nwait\n")
    process = client.run(container, sh(script, user="alice"), stderr=stderr)
    assert stderr.say("waiting\n", 5)
    stopped_at = time.monotonic()
    client.stop(container, kill=False)
    assert process.wait(15) == 143
    assert time.monotonic() - stopped_at <= 9


def test_stop_changes_state(client, container):
    """Lifecycle running a process and then sending a stop request changes the container's state to 'stopped'."""
    client.stop(container, kill=False)
    assert client.info(container).state == "stopped"


def test_stop_kills_after_10s(client, container):
    """Lifecycle running a process and then sending a stop request when a process does not die 10 seconds after
    receiving SIGTERM is forcibly killed."""
    stdout = Buffer()
    script = 'trap "echo cannot touch this" SIGTERM\necho waiting\nwhile true\ndo\n  sleep 1000\ndone'
    process = client.run(container, sh(script, user="alice"), stdout=stdout)
    assert stdout.say("waiting")
    stopped_at = time.monotonic()
    client.stop(container, kill=False)
    assert process.wait(30) in (137, 255)
    assert time.monotonic() - stopped_at >= 10


# ----------------------------------------------------------------------------------- streaming files


def some_tar() -> bytes:
    """GATS' archive: ./some-temp-dir (0755) and ./some-temp-dir/some-temp-file (0777, "some-body")."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.GNU_FORMAT) as tar:
        d = tarfile.TarInfo("./some-temp-dir")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        f = tarfile.TarInfo("./some-temp-dir/some-temp-file")
        f.mode, f.size = 0o777, 9
        tar.addfile(f, io.BytesIO(b"some-body"))
    return data.getvalue()


def test_stream_in_as_user(client, container):
    """Lifecycle running a process and streaming files in creates the files in the container, as the specified
    user."""
    client.stream_in(container, "/home/alice", some_tar(), user="alice")
    spec = models.ProcessSpec(user="alice", path="test", args=["-f", "/home/alice/some-temp-dir/some-temp-file"])
    assert run_process(client, container, spec)[0] == 0
    out = run_for_stdout(client, container, models.ProcessSpec(
        user="alice", path="ls", args=["-al", "/home/alice/some-temp-dir/some-temp-file"]))
    assert re.search(r"alice.*alice", out), out


def test_stream_in_default_user_is_root(client, container):
    """Lifecycle running a process and streaming files in when no user specified streams the files in as root."""
    client.stream_in(container, "/home/alice", some_tar())
    out = run_for_stdout(client, container, models.ProcessSpec(
        user="root", path="ls", args=["-la", "/home/alice/some-temp-dir/some-temp-file"]))
    assert "root" in out, out


def test_stream_in_to_root_dir(client, container):
    """Lifecycle running a process and streaming files in when the destination is '/' does not fail."""
    client.stream_in(container, "/", some_tar())
    spec = models.ProcessSpec(user="root", path="test", args=["-f", "/some-temp-dir/some-temp-file"])
    assert run_process(client, container, spec)[0] == 0


def test_stream_in_unknown_user(client, container):
    """Lifecycle running a process and streaming files in when a non-existent user specified returns error."""
    with pytest.raises(errors.GardenError, match="error streaming in"):
        client.stream_in(container, "/home/alice", some_tar(), user="batman")


def test_stream_in_permission_denied(client, container):
    """Lifecycle running a process and streaming files in when the specified user does not have permission to
    stream in returns error."""
    create_user(client, container, "bob")
    with pytest.raises(errors.GardenError, match="Permission denied"):
        client.stream_in(container, "/home/alice", some_tar(), user="bob")


@pytest.mark.parametrize("privileged", [True, False], ids=["privileged", "unprivileged"])
def test_stream_in_relative_to_home(client, make, privileged):
    """Lifecycle running a process and streaming files in in a privileged container streams in relative to the
    default run directory (and: ... streams in relative to the default run directory)."""
    handle = make(privileged=privileged)
    client.stream_in(handle, ".", some_tar(), user="alice")
    spec = models.ProcessSpec(user="alice", path="test", args=["-f", "some-temp-dir/some-temp-file"])
    assert run_process(client, handle, spec)[0] == 0


def test_stream_in_tar_dies(client, container):
    """Lifecycle running a process and streaming files in returns an error when the tar process dies."""
    with pytest.raises(errors.GardenError):
        client.stream_in(container, "/tmp/some-container-dir", some_tar()[:10], user="alice")


def _stream_out_names(client, handle: str, source: str, user: str) -> list[str]:
    data = b"".join(client.stream_out(handle, source, user=user))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


@pytest.mark.parametrize("user", ["alice", ""], ids=["alice", "no-user"])
def test_stream_out_directory(client, container, user):
    """Lifecycle running a process and streaming files in and then copying them out streams the directory
    (and: ... when no user specified streams the directory)."""
    client.stream_in(container, "/home/alice", some_tar(), user="alice")
    script = "mkdir -p some-outer-dir/some-inner-dir && touch some-outer-dir/some-inner-dir/some-file"
    assert run_process(client, container, sh(script, user="alice"))[0] == 0
    names = _stream_out_names(client, container, "/home/alice/some-outer-dir/some-inner-dir", user)
    # GATS reads the raw header names: "some-inner-dir/" then "some-inner-dir/some-file".
    data = b"".join(client.stream_out(container, "/home/alice/some-outer-dir/some-inner-dir", user=user))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        raw = [m.name + ("/" if m.isdir() else "") for m in tar.getmembers()]
    assert names[:2] == ["some-inner-dir", "some-inner-dir/some-file"]
    assert raw[:2] == ["some-inner-dir/", "some-inner-dir/some-file"]


def test_stream_out_trailing_slash(client, container):
    """Lifecycle running a process and streaming files in and then copying them out with a trailing slash streams
    the contents of the directory."""
    script = "mkdir -p some-container-dir && touch some-container-dir/some-file"
    assert run_process(client, container, sh(script, user="alice"))[0] == 0
    data = b"".join(client.stream_out(container, "some-container-dir/", user="alice"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    raw = [m.name + ("/" if m.isdir() and not m.name.endswith("/") else "") for m in members]
    assert raw[:2] == ["./", "./some-file"], raw


# ----------------------------------------------------------------------------------- grace time


def test_grace_time_reaps(client, make):
    """Lifecycle when the container GraceTime is applied should disappear after grace time and before timeout."""
    handle = make()
    client.set_grace_time(handle, 500_000_000)
    assert client.lookup(handle) == handle
    deadline = time.monotonic() + 10
    while handle in client.list() and time.monotonic() < deadline:
        time.sleep(0.2)
    with pytest.raises(errors.ContainerNotFoundError):
        client.lookup(handle)


def test_grace_time_unknown_handle_message(client, container):
    """Lifecycle when the container GraceTime is applied returns an unknown handle error when calling the API."""
    with pytest.raises(errors.GardenError, match="^unknown handle: not-a-real-handle$"):
        client.destroy("not-a-real-handle")


def test_grace_time_held_by_attached_process(client, container):
    """Lifecycle when the container GraceTime is applied when a process is started and the container GraceTime is
    reset should account for existing client connections."""
    process = client.run(container, sh("sleep 1000"), stdout=Buffer(), stderr=Buffer())
    client.set_grace_time(container, 50_000_000)
    try:
        for _ in range(2):  # Consistently(..., "1s", "1s")
            assert client.lookup(container) == container
            time.sleep(0.6)
        assert client.lookup(container) == container
    finally:
        process.detach()
