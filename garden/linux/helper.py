"""The single-threaded helper process that does all namespace work (see DESIGN.md).

The daemon forks it once at start-up, before any thread exists. The helper then forks a child for
every request (make a container, start a process, stream a tar in or out) and replies with the
child's pid; the child reports progress on its own status socket, which the daemon passed in.
The helper is a child subreaper, so container inits orphaned by their launcher are reaped here.
It also writes the id maps of an unprivileged container's new user namespace (that needs a process
outside it), so the launcher does not have to fork a mapper.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
from collections.abc import Callable

from garden.linux import channel, seccomp_profile, security, spawn, tarstream
from kernel import idmap
from kernel import syscalls as sc

OPS: dict[str, Callable[[dict, list[int]], int]] = {
    "container": spawn.container,
    "process": spawn.process,
    "pea": spawn.pea,
    "stream_in": tarstream.stream_in,
    "stream_out": tarstream.stream_out,
}


def _reap(_signum: int, _frame: object) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _serve(sock: socket.socket) -> None:
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    seccomp_profile.bpf()  # compiled once here; every fork inherits it
    security.warm()
    awaiting_maps: dict[int, tuple[int, int]] = {}  # ready pipe → (launcher pid, go pipe)
    while True:
        readable, _, _ = select.select([sock, *awaiting_maps], [], [])
        for fd in readable:
            if fd in awaiting_maps:  # a launcher has unshared its user namespace (or died)
                pid, go_w = awaiting_maps.pop(fd)
                idmap.map_when_ready(pid, fd, go_w)
        if sock not in readable:
            continue
        request, fds = channel.recv(sock)
        if request is None:
            return
        mapping = request["op"] == "container" and request["userns"]
        if mapping:  # the child unshares a user namespace; its maps must be written from out here
            (ready_r, ready_w), (go_r, go_w) = os.pipe(), os.pipe()
            fds += [ready_w, go_r]
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sock.close()
                for ready_fd, (_, go_fd) in awaiting_maps.items():  # other launchers' pipes
                    os.close(ready_fd)
                    os.close(go_fd)
                code = OPS[request["op"]](request, fds)
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        if mapping:
            awaiting_maps[ready_r] = (pid, go_w)
        channel.send(sock, {"pid": pid})


class Helper:
    """The daemon's handle on the helper process."""

    def __init__(self, sock: socket.socket, pid: int):
        self.sock = sock
        self.pid = pid
        self._lock = asyncio.Lock()

    @classmethod
    def start(cls) -> Helper:
        """Fork the helper. Call before any thread is started in this process.

        Also makes this process's id-mapping user namespace (idmapped image layers), which needs a fork too.
        """
        idmap.prepare()
        parent_end, child_end = channel.pair()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                parent_end.close()
                _serve(child_end)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child_end.close()
        parent_end.setblocking(False)
        return cls(parent_end, pid)

    async def spawn(self, op: str, request: dict, fds: list[int]) -> int:
        """Fork a helper child running `op`; returns its pid. The caller closes its copies of `fds`."""
        async with self._lock:
            channel.send(self.sock, dict(request, op=op), fds)
            reply, _ = await channel.recv_async(self.sock)
        if reply is None:
            raise OSError("the namespace helper exited")
        return reply["pid"]

    def stop(self) -> None:
        self.sock.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
