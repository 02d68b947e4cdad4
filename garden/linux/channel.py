"""JSON messages with attached file descriptors over SOCK_SEQPACKET unix sockets.

The daemon, the helper and the helper's children all talk this way: one datagram is one JSON object,
file descriptors ride along as SCM_RIGHTS and arrive close-on-exec.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Iterator

MAX_MESSAGE = 1 << 20
MAX_FDS = 8


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, message: dict, fds: list[int] | tuple[int, ...] = ()) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(data)


def recv(sock: socket.socket) -> tuple[dict | None, list[int]]:
    """One message and its fds; (None, []) at EOF. Raises BlockingIOError on a non-blocking empty socket."""
    data, ancdata, _flags, _addr = sock.recvmsg(
        MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * 4), socket.MSG_CMSG_CLOEXEC
    )
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % 4])
            fds.extend(got)
    if not data:
        return None, fds
    return json.loads(data), fds


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def ready() -> None:
        if not waiter.done():
            waiter.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await waiter
    finally:
        loop.remove_reader(fd)


async def recv_async(sock: socket.socket) -> tuple[dict | None, list[int]]:
    """recv() on a non-blocking socket from asyncio."""
    while True:
        try:
            return recv(sock)
        except BlockingIOError:
            await _readable(sock.fileno())


@contextlib.contextmanager
def short_path(path: str) -> Iterator[str]:
    """`path` reachable within AF_UNIX's 108-byte limit (through /proc/self/fd of its open directory)."""
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}"
    finally:
        os.close(dir_fd)
