"""`trellis gaol` commands against the real daemon, run as a user would (a subprocess per command)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.garden_server import tar_of

REPO = Path(__file__).resolve().parents[3]


def gaol(server, *args: str, stdin: bytes = b"",
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "trellis.cli", "gaol"]
    if env is None:
        argv += ["--target", server.socket_path]
    return subprocess.run([*argv, *args], input=stdin, capture_output=True, cwd=REPO, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def handle(garden_server):
    result = gaol(garden_server, "create", "-n", "gaol-test", "-P", "owner=gaol", "--env", "GREETING=hi",
                  "-g", "10m")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"gaol-test\n"
    yield "gaol-test"
    client = garden_server.client()
    if "gaol-test" in client.list({"garden.state": "all"}):
        client.destroy("gaol-test")


def test_ping_and_target_from_environment(garden_server):
    assert gaol(garden_server, "ping").returncode == 0
    via_env = gaol(garden_server, "--target-network", "unix", "ping",
                   env={"GAOL_TARGET": garden_server.socket_path})
    assert via_env.returncode == 0, via_env.stderr


def test_list_info_and_properties(garden_server, handle):
    assert handle in gaol(garden_server, "list").stdout.decode().split()
    assert gaol(garden_server, "list", "-p", "owner=gaol").stdout == b"gaol-test\n"
    assert gaol(garden_server, "list", "-p", "owner=nobody").stdout == b""
    assert json.loads(gaol(garden_server, "info", handle).stdout)["State"] == "active"
    assert "MemoryStat" in json.loads(gaol(garden_server, "metrics", handle).stdout)
    assert gaol(garden_server, "set-property", handle, "colour", "blue").returncode == 0
    assert gaol(garden_server, "get-property", handle, "colour").stdout == b"blue\n"
    assert b"colour\tblue\n" in gaol(garden_server, "properties", handle).stdout
    assert gaol(garden_server, "remove-property", handle, "colour").returncode == 0
    missing = gaol(garden_server, "get-property", handle, "colour")
    assert missing.returncode == 1 and b"property does not exist: colour" in missing.stderr


def test_run_attached_streams_stdio_and_exits_with_status(garden_server, handle):
    result = gaol(garden_server, "run", "-a", "-c", "sh -c 'read x; echo $GREETING $x; echo e >&2; exit 7'",
                  handle, stdin=b"there\n")
    assert (result.returncode, result.stdout, result.stderr) == (7, b"hi there\n", b"e\n")


def test_run_detached_then_attach(garden_server, handle):
    started = gaol(garden_server, "run", "-i", "gaol-proc", "-c", "sh -c 'echo from-attach; exit 4'", handle)
    assert started.returncode == 0 and started.stdout == b"gaol-proc\n"
    attached = gaol(garden_server, "attach", "-p", "gaol-proc", handle)
    assert attached.returncode == 4


def test_stream_in_and_out_through_pipes(garden_server, handle):
    tar_bytes = tar_of({"note.txt": b"memo"})
    assert gaol(garden_server, "stream-in", "-t", "/tmp/in", handle, stdin=tar_bytes).returncode == 0
    out = gaol(garden_server, "stream-out", "-f", "/tmp/in/note.txt", handle)
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        assert tar.extractfile("note.txt").read() == b"memo"


def test_shell_without_terminal_runs_commands(garden_server, handle):
    result = gaol(garden_server, "shell", handle, stdin=b"echo $GREETING from shell; exit 3\n")
    assert result.returncode == 3 and b"hi from shell" in result.stdout


def test_destroy_and_errors(garden_server, handle):
    assert gaol(garden_server, "destroy", handle).returncode == 0
    again = gaol(garden_server, "destroy", handle)
    assert again.returncode == 1 and again.stderr == b"error: unknown handle: gaol-test\n"
    bad = gaol(garden_server, "run", "-a", "-c", "true", "no-such-container")
    assert bad.returncode == 1 and b"unknown handle: no-such-container" in bad.stderr
