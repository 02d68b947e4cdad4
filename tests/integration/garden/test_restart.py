"""Daemon restarts: containers and their processes survive, half-made containers are cleaned up."""

from __future__ import annotations

import io
import json
import os
import time

import pytest

from garden import errors, models
from garden.daemon_process import GardenServer
from tests.garden_server import cgroup_dirs, mounts_under


@pytest.fixture
def own_server(tmp_path, busybox_rootfs):
    server = GardenServer(tmp_path / "daemon", busybox_rootfs, ["--disable-networking"])
    with server.running():
        yield server


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie: an orphan of the killed daemon waits for the host's init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def output_of(client, handle: str, *args: str) -> str:
    out = io.BytesIO()
    assert client.run(handle, models.ProcessSpec(path=args[0], args=list(args[1:])), stdout=out).wait() == 0
    return out.getvalue().decode()


def test_containers_and_processes_survive_a_daemon_crash(own_server):
    client = own_server.client()
    handle = client.create(models.ContainerSpec(handle="survivor", properties={"team": "a"}))
    client.run(handle, models.ProcessSpec(path="sh", args=["-c", "echo started > /tmp/marker; sleep 1000"]))
    chatty = "while true; do echo tick; echo tock >&2; sleep 0.02; done"  # writes on after its reader is gone
    client.run(handle, models.ProcessSpec(id="chatty", path="sh", args=["-c", chatty]), stdout=io.BytesIO())
    client.run(handle, models.ProcessSpec(id="chatty-tty", path="sh", args=["-c", chatty], tty=models.TTYSpec()))
    own_server.kill()  # SIGKILL: no shutdown code runs
    time.sleep(0.3)
    own_server.start()
    client = own_server.client()
    assert client.list({"team": "a"}) == ["survivor"]
    assert client.info(handle).state == "active"
    processes = output_of(client, handle, "ps", "-o", "args")
    assert "sleep 1000" in processes
    still_writing = processes.count(chatty)
    assert still_writing == 2, processes
    for process_id in ("chatty", "chatty-tty"):  # the restarted daemon took the processes over
        out = io.BytesIO()
        process = client.attach(handle, process_id, stdout=out)
        deadline = time.monotonic() + 10
        while b"tick" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b"tick" in out.getvalue(), process_id
        process.signal(models.SIGNAL_KILL)
        assert process.wait() == 137
    assert output_of(client, handle, "cat", "/tmp/marker") == "started\n"
    client.destroy(handle)
    assert not cgroup_dirs(handle)
    assert not mounts_under(os.path.join(own_server.store, "containers", handle))


def test_half_made_container_is_cleaned_up_on_start(own_server):
    client = own_server.client()
    handle = client.create(models.ContainerSpec(handle="half"))
    state_file = os.path.join(own_server.depot, handle, "state.json")
    with open(state_file) as f:
        init_pid = json.load(f)["init_pid"]
    own_server.kill()
    os.unlink(state_file)  # as if the daemon died in the middle of create
    own_server.start()
    client = own_server.client()
    assert handle not in client.list({"garden.state": "all"})
    with pytest.raises(errors.ContainerNotFoundError):
        client.info(handle)
    assert not cgroup_dirs(handle)
    assert not mounts_under(os.path.join(own_server.store, "containers", handle))
    assert not os.path.exists(os.path.join(own_server.depot, handle))
    assert not alive(init_pid)
