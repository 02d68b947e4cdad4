"""A running (or finished) container process on the daemon side: pipes, pty, fan-out to attaches."""

from __future__ import annotations

import asyncio
import collections
import fcntl
import itertools
import os
import signal
import socket
import struct
import termios

from garden.backend import STDERR, STDOUT, OutputStream, Process
from garden.errors import ExecutableNotFoundError, GardenError
from garden.linux import channel

UNCONNECTED_CAP = 1 << 20  # bytes kept for a stream nobody reads; more is dropped, as Garden does
CONNECT_GRACE = 1.0  # a new attach's stream connections usually follow within ms: pause output until then
HIGH_WATER = 8 << 20  # a connected reader this far behind pauses the process's output
LOW_WATER = 1 << 20
DRAIN_IDLE = 0.2  # after exit: stop waiting for EOF once output has been idle this long (orphans hold pipes)
KEEP_AFTER_EXIT = 60.0
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031
_stream_ids = itertools.count(1)


class Stream(OutputStream):
    """One attach's stdout and stderr buffers."""

    def __init__(self, owner: LinuxProcess):
        self.id = str(next(_stream_ids))
        self._owner = owner
        self._buffers: dict[int, collections.deque[bytes]] = {STDOUT: collections.deque(), STDERR: collections.deque()}
        self._sizes = {STDOUT: 0, STDERR: 0}
        self._connected: set[int] = set()
        self._changed = asyncio.Event()
        self._finished = False
        self._born = asyncio.get_running_loop().time()

    def _expected(self) -> bool:
        """Within the grace time in which the client normally opens its stream connections."""
        return asyncio.get_running_loop().time() - self._born < CONNECT_GRACE

    def push(self, fd: int, data: bytes) -> None:
        if fd not in self._connected and not self._expected() and self._sizes[fd] + len(data) > UNCONNECTED_CAP:
            return
        self._buffers[fd].append(data)
        self._sizes[fd] += len(data)
        self._changed.set()

    def over(self, fd: int, connected_limit: int, waiting_limit: int) -> bool:
        """Is this stream too far behind on `fd` (a reader is connected, or still expected)?"""
        if fd in self._connected:
            return self._sizes[fd] > connected_limit
        return self._expected() and self._sizes[fd] > waiting_limit

    def finish(self) -> None:
        self._finished = True
        self._changed.set()

    async def read(self, fd: int) -> bytes:
        self._connected.add(fd)
        buffer = self._buffers[fd]
        while not buffer:
            if self._finished:
                return b""
            self._changed.clear()
            await self._changed.wait()
        data = b"".join(buffer)
        buffer.clear()
        self._sizes[fd] = 0
        self._owner.output_consumed()
        return data


class _Reader(asyncio.Protocol):
    def __init__(self, process: LinuxProcess, fd: int):
        self.process, self.fd = process, fd
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.process.output(self.fd, data)

    def connection_lost(self, exc: Exception | None) -> None:  # EOF, or EIO on a pty whose slave closed
        if not self.done.done():
            self.done.set_result(None)


class LinuxProcess(Process):
    def __init__(self, process_id: str, status: socket.socket, on_exit: callable):
        self.id = process_id
        self.pid = 0
        self._status = status
        self._on_exit = on_exit
        self._streams: dict[str, Stream] = {}
        self._readers: list[tuple[asyncio.ReadTransport, _Reader]] = []
        self._stdin: asyncio.WriteTransport | None = None
        self._tty_fd: int | None = None
        self._paused: set[int] = set()
        self._last_output = 0.0
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # Output that arrives before the caller attaches goes here; the first new_stream() claims it.
        self._first: Stream | None = None
        self._first = self.new_stream()

    async def start(self, stdin_w: int | None, stdout_r: int | None, stderr_r: int | None) -> None:
        """Wait for the shim's report; connect the pipes (or the pty it sends). Raises on exec failure."""
        try:
            while "pid" not in (message := await self._next_report()):
                if message.get("tty"):
                    self._tty_fd = message["fds"][0]  # kept for resizes; the transports get copies
                    stdin_w, stdout_r = os.dup(self._tty_fd), os.dup(self._tty_fd)
        except BaseException:
            close_fds(stdin_w, stdout_r, stderr_r, self._tty_fd)
            self._status.close()
            raise
        self.pid = message["pid"]
        await self._connect(stdin_w, stdout_r, stderr_r)

    @classmethod
    async def adopt(cls, status: socket.socket, on_exit: callable) -> LinuxProcess:
        """Take over a process a previous daemon started: its shim hands over id, pid and the outputs."""
        message, fds = await channel.recv_async(status)
        if message is None or "pid" not in message:
            close_fds(*fds)
            raise GardenError("the process's shim handed nothing over")
        process = cls(message["id"], status, on_exit)
        process.pid = message["pid"]
        if message.get("tty"):
            process._tty_fd = fds[0]
            await process._connect(os.dup(fds[0]), os.dup(fds[0]), None)
        else:
            await process._connect(None, *fds[:2])
        return process

    async def _connect(self, stdin_w: int | None, stdout_r: int | None, stderr_r: int | None) -> None:
        loop = asyncio.get_running_loop()
        for fd, source in ((STDOUT, stdout_r), (STDERR, stderr_r)):
            if source is not None:
                reader = _Reader(self, fd)
                transport, _ = await loop.connect_read_pipe(lambda r=reader: r, os.fdopen(source, "rb", 0))
                self._readers.append((transport, reader))
        if stdin_w is not None:
            self._stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(stdin_w, "wb", 0))
        loop.create_task(self._wait_exit())

    async def _next_report(self) -> dict:
        message, fds = await channel.recv_async(self._status)
        if message is None:
            raise GardenError("process launcher exited without a report")
        if "error" in message:
            if message.get("kind") == "not_found":
                raise ExecutableNotFoundError(message["error"])
            raise GardenError(message["error"])
        return dict(message, fds=fds)

    async def _wait_exit(self) -> None:
        loop = asyncio.get_running_loop()
        code = None
        while code is None:
            message, _ = await channel.recv_async(self._status)
            if message is None:
                break
            code = message.get("exit")
        self._status.close()
        self._last_output = max(self._last_output, loop.time())  # the drain's idle clock starts now
        for transport, reader in self._readers:  # drain what the process wrote before it exited
            while not reader.done.done():
                idle = loop.time() - self._last_output
                if idle >= DRAIN_IDLE and reader.fd not in self._paused:
                    break
                await asyncio.wait([reader.done], timeout=DRAIN_IDLE)
            transport.close()
        if self._stdin is not None:
            self._stdin.close()
        if self._tty_fd is not None:
            os.close(self._tty_fd)
        for stream in self._streams.values():
            stream.finish()
        if code is None:
            self._exit.set_exception(GardenError("process launcher exited without an exit status"))
        else:
            self._exit.set_result(code)
        loop.call_later(KEEP_AFTER_EXIT, self._on_exit, self)

    def output(self, fd: int, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        self._last_output = loop.time()
        for stream in self._streams.values():
            stream.push(fd, data)
        if fd not in self._paused and any(s.over(fd, HIGH_WATER, UNCONNECTED_CAP) for s in self._streams.values()):
            self._paused.add(fd)
            self._transport(fd).pause_reading()
            loop.call_later(CONNECT_GRACE, self.output_consumed)  # a stream that never connects stops pausing

    def output_consumed(self) -> None:
        """Resume reading an fd once no stream is too far behind on it."""
        for fd in list(self._paused):
            if not any(s.over(fd, LOW_WATER, UNCONNECTED_CAP // 2) for s in self._streams.values()):
                self._paused.discard(fd)
                transport = self._transport(fd)
                if not transport.is_closing():
                    transport.resume_reading()

    def _transport(self, fd: int) -> asyncio.ReadTransport:
        return next(t for t, reader in self._readers if reader.fd == fd)

    def new_stream(self) -> Stream:
        if self._first is not None:
            stream, self._first = self._first, None
            return stream
        stream = Stream(self)
        self._streams[stream.id] = stream
        if self._exit.done():
            stream.finish()
        return stream

    def stream(self, stream_id: str) -> Stream | None:
        return self._streams.get(stream_id)

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(data)

    def close_stdin(self) -> None:
        if self._stdin is None or self._stdin.is_closing():
            return
        if self._tty_fd is not None:
            self._stdin.write(b"\x04")  # a pty has no half-close: send EOF the terminal way
        else:
            self._stdin.close()

    def signal(self, garden_signal: int) -> None:
        sig = {0: signal.SIGTERM, 1: signal.SIGKILL}.get(garden_signal)
        if sig is None:
            raise GardenError(f"unknown signal: {garden_signal}")
        if self.pid and not self._exit.done():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def resize(self, columns: int, rows: int) -> None:
        if self._tty_fd is not None and not self._exit.done():
            fcntl.ioctl(self._tty_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    @property
    def exited(self) -> bool:
        return self._exit.done()


def close_fds(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            os.close(fd)


def make_pipes(tty: bool) -> tuple[list[int], tuple[int | None, int | None, int | None]]:
    """(fds for the shim, (stdin_w, stdout_r, stderr_r) for the daemon). With a tty the shim makes a pty.

    The shim also gets copies of the output pipes' read ends, to drain them should the daemon die.
    """
    if tty:
        return [], (None, None, None)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    for fd in (out_w, err_w):
        try:
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
    return [in_r, out_w, err_w, os.dup(out_r), os.dup(err_r)], (in_w, out_r, err_r)
