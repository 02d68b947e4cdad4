"""Processes and container calls through garden.client against the real daemon."""

from __future__ import annotations

import asyncio
import io
import tarfile
import threading

import pytest

from garden import errors, models
from tests.garden_server import tar_of
from tests.integration.garden.gats_support import sh


@pytest.fixture
def handle(make):
    return make(user=False, env=["FROM_CONTAINER=c", "SHARED=container"], properties={"wire-test": "yes"})


def run(client, handle: str, spec: models.ProcessSpec, stdin=None) -> tuple[int, bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    status = client.run(handle, spec, stdin, out, err).wait()
    return status, out.getvalue(), err.getvalue()


def test_stdout_stderr_exit_code_and_env(client, handle):
    status, out, err = run(client, handle, sh("echo $FROM_CONTAINER $SHARED $OWN; echo to-err >&2; exit 42",
                                              env=["SHARED=process", "OWN=o"]))
    assert (status, out, err) == (42, b"c process o\n", b"to-err\n")


def test_stdin_and_binary_output_are_byte_exact(client, handle):
    payload = bytes(range(256)) * 64
    client.stream_in(handle, "/tmp", tar_of({"blob": payload}))
    status, out, _ = run(client, handle, models.ProcessSpec(path="cat", args=["/tmp/blob"]))
    assert status == 0 and out == payload
    text = "line one\nzwei ü\n" * 1000
    status, out, _ = run(client, handle, models.ProcessSpec(path="cat"), stdin=text.encode())
    assert status == 0 and out == text.encode()


@pytest.mark.parametrize(("signal", "expected"), [(models.SIGNAL_KILL, 137), (models.SIGNAL_TERMINATE, 143)])
def test_signals_give_128_plus_n(client, handle, signal, expected):
    started = threading.Event()
    process = client.run(handle, sh("echo up; exec sleep 1000"), stdout=lambda _b: started.set())
    assert started.wait(30)
    process.signal(signal)
    assert process.wait() == expected


def test_tty_size_and_resize(client, handle):
    out = io.BytesIO()
    seen = threading.Condition()

    def sink(data: bytes) -> None:
        with seen:
            out.write(data)
            seen.notify_all()

    tty = models.TTYSpec(models.WindowSize(columns=100, rows=50))
    process = client.run(handle, sh("stty size; read x; stty size; exit 3", tty=tty), stdout=sink)
    with seen:
        assert seen.wait_for(lambda: b"50 100" in out.getvalue(), 30)
    process.set_tty(120, 40)
    process.write_stdin(b"go\n")
    assert process.wait() == 3
    assert b"40 120" in out.getvalue()


def test_detach_then_attach_many_times(client, handle):
    script = "while [ ! -e /tmp/go ]; do sleep 0.01; done; echo got; echo err-side >&2; exit 12"
    process = client.run(handle, sh(script, id="wire-multi"))
    assert process.id == "wire-multi"
    process.detach()  # the process keeps running without any client
    outs = [io.BytesIO() for _ in range(3)]
    errs = [io.BytesIO() for _ in range(3)]
    attached = [client.attach(handle, "wire-multi", stdout=o, stderr=e)
                for o, e in zip(outs, errs, strict=True)]
    client.stream_in(handle, "/tmp", tar_of({"go": b""}))
    assert [p.wait() for p in attached] == [12, 12, 12]
    assert [o.getvalue() for o in outs] == [b"got\n"] * 3
    assert [e.getvalue() for e in errs] == [b"err-side\n"] * 3
    assert attached[0].wait() == 12  # repeatable
    late = client.attach(handle, "wire-multi", stdout=io.BytesIO())  # after exit
    assert late.wait() == 12


def test_process_errors(client, handle):
    with pytest.raises(errors.ExecutableNotFoundError):
        client.run(handle, models.ProcessSpec(path="/does/not/exist"))
    with pytest.raises(errors.ProcessNotFoundError) as caught:
        client.attach(handle, "no-such-process")
    assert caught.value.process_id == "no-such-process"
    first = client.run(handle, sh("exit 0", id="wire-dup-id"))
    assert first.wait() == 0
    with pytest.raises(errors.GardenError, match="already (in use|exists)"):
        client.run(handle, sh("exit 0", id="wire-dup-id"))
    with pytest.raises(errors.ContainerNotFoundError):
        client.run("no-such-container", sh("true"))


def test_stream_in_and_out_round_trip(client, handle):
    files = {"a.txt": b"alpha", "dir/b.bin": bytes(range(256))}
    client.stream_in(handle, "/tmp/round", io.BytesIO(tar_of(files)))  # file-like: chunked upload
    tar_bytes = b"".join(client.stream_out(handle, "/tmp/round/"))
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        got = {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert got == files
    with pytest.raises(errors.GardenError):
        client.stream_out(handle, "/tmp/does-not-exist")


def test_container_calls(client, handle):
    assert client.lookup(handle) == handle
    assert handle in client.list({"wire-test": "yes"})
    assert handle not in client.list({"wire-test": "no"})
    assert client.info(handle).state == "active"
    client.set_property(handle, "key with spaces+plus", "v")
    assert client.property(handle, "key with spaces+plus") == "v"
    assert client.properties(handle)["key with spaces+plus"] == "v"
    client.remove_property(handle, "key with spaces+plus")
    with pytest.raises(errors.GardenError, match="property does not exist"):
        client.property(handle, "key with spaces+plus")
    assert client.metrics(handle).pids.current >= 1
    assert isinstance(client.limits(handle), models.Limits)
    bulk = client.bulk_info([handle, "wire-missing"])
    assert bulk[handle].state == "active"
    assert isinstance(bulk["wire-missing"], errors.GardenError)
    assert client.capacity().max_containers > 0
    client.stop(handle, kill=True)
    assert client.info(handle).state == "stopped"
    client.destroy(handle)
    with pytest.raises(errors.ContainerNotFoundError):
        client.lookup(handle)
    with pytest.raises(errors.ContainerNotFoundError):
        client.destroy(handle)


def test_grace_time_paused_while_attached(client, handle):
    client.set_grace_time(handle, 300_000_000)
    assert run(client, handle, sh("sleep 1; echo alive"))[:2] == (0, b"alive\n")
    assert handle in client.list()


def test_async_client_runs_concurrently(garden_server, handle):
    async def scenario() -> list[int]:
        aclient = garden_server.async_client()
        processes = [await aclient.run(handle, sh(f"exit {n}"), stdout=io.BytesIO()) for n in range(5)]
        return list(await asyncio.gather(*(p.wait() for p in processes)))

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]
