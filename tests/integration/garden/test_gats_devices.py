"""GATS `devices_test.go` mirrored in Python against the real daemon (one fresh container per spec)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from garden import models

# ----------------------------------------------------------------------------------- GATS-like helpers


class Buffer:
    """A gbytes.Buffer: a thread-safe sink with `say(regex, timeout)` (Eventually(...).Should(Say(...)))."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._cond = threading.Condition()

    def __call__(self, chunk: bytes) -> None:
        with self._cond:
            self._data += chunk
            self._cond.notify_all()

    def text(self) -> str:
        with self._cond:
            return self._data.decode(errors="replace")

    def say(self, pattern: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not re.search(pattern, self._data.decode(errors="replace")):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


def sh(script: str, **kw) -> models.ProcessSpec:
    return models.ProcessSpec(path="sh", args=["-c", script], **kw)


def run_process(client, handle: str, spec: models.ProcessSpec) -> tuple[int, str, str]:
    out, err = Buffer(), Buffer()
    code = client.run(handle, spec, stdout=out, stderr=err).wait(60)
    return code, out.text(), err.text()


def run_for_stdout(client, handle: str, spec: models.ProcessSpec) -> str:
    return run_process(client, handle, spec)[1]


def create_user(client, handle: str, name: str) -> None:
    """GATS' createUser (`id -u NAME || adduser -D NAME`); Debian's busybox has no adduser applet, so the
    fallback writes /etc/passwd, /etc/group and the home directory the way `adduser -D` would."""
    script = (f"id -u {name} && exit 0; command -v adduser >/dev/null && exec adduser -D {name}; "
              "uid=1000; while grep -q \"^[^:]*:[^:]*:$uid:\" /etc/passwd /etc/group; do uid=$((uid+1)); done; "
              f"echo \"{name}:x:$uid:$uid:Linux User,,,:/home/{name}:/bin/sh\" >> /etc/passwd && "
              f"echo \"{name}:x:$uid:\" >> /etc/group && mkdir -p /home/{name} && chown $uid:$uid /home/{name}")
    code, out, err = run_process(client, handle, sh(script, user="root"))
    assert code == 0, (out, err)


@pytest.fixture
def client(garden_server):
    return garden_server.client()


@pytest.fixture
def make(client) -> Iterator[Callable[..., str]]:
    """GATS' JustBeforeEach: create a container from per-spec vars, then Lifecycle's createUser alice."""
    made: list[str] = []

    def create(user: bool = True, **spec) -> str:
        handle = client.create(models.ContainerSpec(**spec))
        made.append(handle)
        if user:
            create_user(client, handle, "alice")
        return handle

    yield create
    live = set(client.list({"garden.state": "all"}))
    for handle in made:
        if handle in live:
            client.destroy(handle)


@pytest.fixture
def container(make) -> str:
    return make()



@pytest.mark.parametrize(("device", "major", "minor"), [
    ("/dev/tty", 5, 0), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/pts/ptmx", 5, 2),
], ids=["tty", "random", "urandom", "null", "zero", "full", "pts-ptmx"])
def test_device(client, container, device, major, minor):
    """Devices Devices should have the TTY / random / urandom / null / zero / full / /dev/pts/ptmx device."""
    code, out, err = run_process(client, container, models.ProcessSpec(path="ls", args=["-l", device]))
    assert code == 0, err
    assert re.search(rf"{major},\s*{minor}", out), out


@pytest.mark.parametrize(("device", "fd"), [
    ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2"),
], ids=["fd", "stdin", "stdout", "stderr"])
def test_process_fd_links(client, container, device, fd):
    """Devices Process should have /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr."""
    code, out, err = run_process(client, container, models.ProcessSpec(path="ls", args=["-l", device]))
    assert code == 0, err
    assert f"{device} -> {fd}" in out, out


def test_devpts_mounted(client, container):
    """Devices should have devpts mounted."""
    code, out, _ = run_process(client, container, models.ProcessSpec(user="root", path="cat", args=["/proc/mounts"]))
    assert code == 0
    assert re.search(r"devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=\d+,mode=620,ptmxmode=666", out), out

