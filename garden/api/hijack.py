"""Hijacked connections: Run/Attach control channels and the stdout/stderr stream routes (spec §6, §8).

After the response headers (`Transfer-Encoding: chunked`, but raw unframed bytes follow, and never
`Connection: close`) the socket carries NDJSON control messages or raw process output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiohttp import web

from garden import backend, errors
from garden.api import codec

log = logging.getLogger(__name__)

_PAUSE_AT = 1 << 20  # stop reading the socket when this much control input is unprocessed


class _RawResponse(web.StreamResponse):
    """A response whose body bytes go out unframed (aiohttp's websocket trick)."""

    _length_check = False


class _Feed:
    """Receives every byte the client sends after the hijack (aiohttp `set_parser` protocol)."""

    def __init__(self, transport: asyncio.Transport | None, on_eof: Callable[[], None]):
        self._transport = transport
        self._buf = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._on_eof = on_eof
        self.eof = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._buf += data
        if len(self._buf) > _PAUSE_AT and self._transport is not None and not self._paused:
            self._paused = True
            self._transport.pause_reading()
        self._wake()
        return False, b""

    def feed_eof(self) -> None:
        self.eof = True
        self._wake()
        self._on_eof()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def readline(self) -> bytes | None:
        """The next complete line (without the newline); None once the client has gone."""
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                if self._paused and len(self._buf) < _PAUSE_AT // 2 and self._transport is not None:
                    self._paused = False
                    self._transport.resume_reading()
                return line
            if self.eof:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None


class Hijacks:
    """The server's live hijacked connections, so shutdown can detach them all."""

    def __init__(self) -> None:
        self.active: set[Hijacked] = set()
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True
        for conn in list(self.active):
            conn.set_gone()


class Hijacked:
    """One hijacked connection: `gone` resolves when the client leaves or the server stops."""

    def __init__(self, request: web.Request, hijacks: Hijacks):
        self.request = request
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.feed = _Feed(request.transport, self.set_gone)
        self.response = _RawResponse()
        self._hijacks = hijacks
        hijacks.active.add(self)
        if hijacks.stopping:
            self.set_gone()

    def set_gone(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    async def start(self, status: int, content_type: str | None) -> None:
        """Take the socket over and send the response headers."""
        self.request.protocol.set_parser(self.feed)
        self.response.set_status(status)
        self.response.headers["Transfer-Encoding"] = "chunked"
        if content_type:
            self.response.content_type = content_type
        await self.response.prepare(self.request)

    async def write(self, data: bytes) -> None:
        await self.response.write(data)

    def close(self) -> None:
        self._hijacks.active.discard(self)
        transport = self.request.transport
        if transport is not None:
            transport.close()


async def serve_process(request: web.Request, process: backend.Process, status: int,
                        hijacks: Hijacks) -> web.StreamResponse:
    """Run/Attach: stream control messages until exit (status line) or until the client leaves."""
    stream = process.new_stream()
    conn = Hijacked(request, hijacks)
    waiter = asyncio.ensure_future(process.wait())
    pump = asyncio.ensure_future(_pump_control(conn.feed, process))
    pump.add_done_callback(_consume)
    try:
        await conn.start(status, "application/json")
        await conn.write(codec.encode(codec.PROCESS_PAYLOAD,
                                      codec.ProcessPayload(process.id, stream_id=stream.id)))
        await asyncio.wait((waiter, conn.gone), return_when=asyncio.FIRST_COMPLETED)
        if waiter.done():
            await conn.write(_exit_line(process.id, waiter))
            process.close_stdin()
        else:  # detach: the process keeps running; stdin closes like Go's pipe
            process.close_stdin()
            waiter.add_done_callback(_consume)
    except ConnectionError:
        process.close_stdin()
        waiter.add_done_callback(_consume)
    finally:
        pump.cancel()
        conn.close()
    return conn.response


def _exit_line(process_id: str, waiter: asyncio.Future[int]) -> bytes:
    exc = waiter.exception()
    if exc is None:
        payload = codec.ProcessPayload(process_id, exit_status=waiter.result())
    else:
        message = exc.message if isinstance(exc, errors.GardenError) else str(exc)
        payload = codec.ProcessPayload(process_id, error=message)
    return codec.encode(codec.PROCESS_PAYLOAD, payload)


def _consume(future: asyncio.Future) -> None:
    """Retrieve a background future's failure so it is logged once, not as 'never retrieved'."""
    if not future.cancelled() and future.exception() is not None:
        log.debug("background process task failed: %s", future.exception())


async def _pump_control(feed: _Feed, process: backend.Process) -> None:
    """Apply stdin data/EOF, signals and tty resizes from the client, in arrival order."""
    accepting = True
    while (line := await feed.readline()) is not None:
        if not accepting or not line.strip():
            continue
        try:
            payload = codec.decode(codec.PROCESS_PAYLOAD, line)
        except errors.GardenError as err:
            log.info("bad control message for process %s: %s", process.id, err.message)
            process.close_stdin()
            accepting = False
            continue
        accepting = await _apply(payload, process)


async def _apply(payload: codec.ProcessPayload, process: backend.Process) -> bool:
    """One control message; False when the client must not send more (Go stops reading then)."""
    if payload.tty is not None:
        size = payload.tty.window_size
        if size is not None:
            process.resize(size.columns, size.rows)
    elif payload.source is not None:
        if payload.data is None:
            process.close_stdin()  # EOF; unlike Go we keep reading so signals/resizes still work
        else:
            with contextlib.suppress(OSError, errors.GardenError):
                await process.write_stdin(payload.data.encode("utf-8", "surrogatepass"))
    elif payload.signal in (0, 1):
        process.signal(payload.signal)
    else:
        log.info("unknown control message for process %s", process.id)
        process.close_stdin()
        return False
    return True


async def serve_stream(request: web.Request, stream: backend.OutputStream | None, fd: int,
                       hijacks: Hijacks) -> web.StreamResponse:
    """Stdout/stderr route: raw output until the process exits and the buffer is drained."""
    conn = Hijacked(request, hijacks)
    try:
        await conn.start(200, None)
        if stream is not None:
            copier = asyncio.ensure_future(_copy(stream, fd, conn))
            await asyncio.wait((copier, conn.gone), return_when=asyncio.FIRST_COMPLETED)
            if copier.done():
                copier.result()
            else:
                copier.cancel()
    except ConnectionError:
        pass
    finally:
        conn.close()
    return conn.response


async def _copy(stream: backend.OutputStream, fd: int, conn: Hijacked) -> None:
    while chunk := await stream.read(fd):
        await conn.write(chunk)
