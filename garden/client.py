"""Garden client speaking the Go client's wire protocol (spec §1.2, §6), over a unix socket or TCP.

`AsyncClient` is the implementation; `Client` runs the same coroutines on a private event-loop thread.
Ordinary calls use one connection each with `Connection: close` and Host `api`; Run/Attach hijack
their connection for NDJSON control messages and open separate stdout/stderr stream connections.
Server errors are raised as `garden.errors` classes.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

from garden import errors, models
from garden.api import codec

DIAL_TIMEOUT = 2.0
_READ_SIZE = 1 << 20
_STDIN_CHUNK = 32 * 1024

# stdout/stderr sink: a callable taking bytes, or an object with `write(bytes)` (either may be async).
# stdin source: bytes/str, a file-like object (sync or async `read(n)`) or an async iterable of bytes.
Sink = Any


def _p(value: str) -> str:
    return quote(value, safe="")


def _parse_address(address: str, network: str | None) -> tuple[str, str]:
    if network is None:
        network = "unix" if "/" in address else "tcp"
    if network not in ("unix", "tcp"):
        raise ValueError(f"unsupported network {network!r} (unix or tcp)")
    return network, address


class _Reader(asyncio.StreamReader):
    """A StreamReader that keeps what it already read when the connection breaks.

    asyncio turns a failed write (e.g. stdin sent after the process exited and the server closed the
    control connection) into an exception that the next read raises *before* the buffered bytes, so an
    exit status that had already arrived was lost. Like Go's conn, deliver the buffer, then end of stream.
    """

    def set_exception(self, exc: BaseException) -> None:
        if isinstance(exc, ConnectionError):
            self.feed_eof()
        else:
            super().set_exception(exc)


class _Conn:
    """One HTTP connection: write a request, read the response head, then the body or raw bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    async def send(self, method: str, target: str, body: bytes | None = None,
                   content_type: str = "application/json", close: bool = True,
                   chunked: AsyncIterator[bytes] | None = None) -> tuple[int, dict[str, str]]:
        head = [f"{method} {target} HTTP/1.1", "Host: api", "User-Agent: Go-http-client/1.1"]
        if body is not None:
            head += [f"Content-Length: {len(body)}", f"Content-Type: {content_type}"]
        elif chunked is not None:
            head += ["Transfer-Encoding: chunked", f"Content-Type: {content_type}"]
        if close:
            head.append("Connection: close")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
        if chunked is not None:
            async for chunk in chunked:
                if chunk:
                    self.writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await self.writer.drain()
            self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()
        return await self._head()

    async def _head(self) -> tuple[int, dict[str, str]]:
        line = await self.reader.readline()
        if not line:
            raise errors.GardenError("connection: EOF")
        status = int(line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        return status, headers

    async def body(self, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """The response body (Content-Length, chunked or until EOF)."""
        if "content-length" in headers:
            if length := int(headers["content-length"]):
                yield await self.reader.readexactly(length)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                yield await self.reader.readexactly(size)
                await self.reader.readexactly(2)
        else:
            while chunk := await self.reader.read(_READ_SIZE):
                yield chunk

    async def read_all(self, headers: dict[str, str]) -> bytes:
        return b"".join([chunk async for chunk in self.body(headers)])

    async def raise_for(self, status: int, headers: dict[str, str]) -> None:
        """Raise the server's error envelope for a non-2xx status (like the Go client)."""
        if 200 <= status < 300:
            return
        body = await self.read_all(headers)
        self.close()
        try:
            envelope = codec.decode(codec.ENVELOPE, body)
        except errors.GardenError as err:
            raise errors.GardenError(f"bad response: {err.message}") from None
        raise codec.envelope_error(envelope)

    def close(self) -> None:
        self.writer.close()


class AsyncClient:
    """asyncio Garden client. `address` is a socket path or host:port (`network` guessed if None)."""

    def __init__(self, address: str, network: str | None = None):
        self.network, self.address = _parse_address(address, network)

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        reader = _Reader(limit=_READ_SIZE, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        if self.network == "unix":
            opening = loop.create_unix_connection(lambda: protocol, self.address)
        else:
            host, _, port = self.address.rpartition(":")
            opening = loop.create_connection(lambda: protocol, host.strip("[]"), int(port))
        try:
            transport, _ = await asyncio.wait_for(opening, DIAL_TIMEOUT)
        except (TimeoutError, OSError) as err:
            raise errors.GardenError(f"dial {self.network} {self.address}: {err}") from err
        return _Conn(reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    async def _call(self, method: str, path: str, kind: codec.Kind | None = None, *,
                    body: bytes | None = None, query: dict[str, str] | None = None) -> Any:
        """One ordinary request; returns the decoded answer (None when `kind` is None)."""
        target = path + ("?" + urlencode(sorted(query.items())) if query is not None else "")
        conn = await self._connect()
        try:
            status, headers = await conn.send(method, target, body)
            await conn.raise_for(status, headers)
            data = await conn.read_all(headers)
        finally:
            conn.close()
        return codec.decode(kind, data) if kind is not None else None

    # --------------------------------------------------------------------------- server-wide

    async def ping(self) -> None:
        await self._call("GET", "/ping")

    async def capacity(self) -> models.Capacity:
        return await self._call("GET", "/capacity", codec.CAPACITY)

    async def create(self, spec: models.ContainerSpec | None = None) -> str:
        """Create a container; returns its handle."""
        body = codec.encode(codec.CONTAINER_SPEC, spec or models.ContainerSpec())
        return (await self._call("POST", "/containers", codec.HANDLE_RESPONSE, body=body)).handle

    async def list(self, properties: dict[str, str] | None = None) -> list[str]:
        """Handles of containers whose properties match all of `properties`."""
        found = await self._call("GET", "/containers", codec.HANDLES, query=properties or None)
        return found.handles

    async def lookup(self, handle: str) -> str:
        """`handle` if the server lists it (the Go client's Lookup), else ContainerNotFoundError."""
        if handle not in await self.list():
            raise errors.ContainerNotFoundError(handle)
        return handle

    async def destroy(self, handle: str) -> None:
        await self._call("DELETE", f"/containers/{_p(handle)}")

    async def bulk_info(self, handles: list[str]) -> dict[str, models.ContainerInfo | errors.GardenError]:
        return await self._bulk("bulk_info", handles, codec.INFO_ENTRIES)

    async def bulk_metrics(self, handles: list[str]) -> dict[str, models.Metrics | errors.GardenError]:
        return await self._bulk("bulk_metrics", handles, codec.METRICS_ENTRIES)

    async def _bulk(self, route: str, handles: list[str], kind: codec.Map) -> dict:
        entries = await self._call("GET", f"/containers/{route}", kind, query={"handles": ",".join(handles)})
        return {h: e.value if e.err is None else codec.envelope_error(e.err) for h, e in entries.items()}

    # --------------------------------------------------------------------------- one container

    def _c(self, handle: str, rest: str = "") -> str:
        return f"/containers/{_p(handle)}{rest}"

    async def info(self, handle: str) -> models.ContainerInfo:
        return await self._call("GET", self._c(handle, "/info"), codec.CONTAINER_INFO)

    async def metrics(self, handle: str) -> models.Metrics:
        return await self._call("GET", self._c(handle, "/metrics"), codec.METRICS)

    async def stop(self, handle: str, kill: bool = False) -> None:
        body = codec.encode(codec.STOP_REQUEST, codec.StopRequest(kill))
        await self._call("PUT", self._c(handle, "/stop"), body=body)

    async def limits(self, handle: str) -> models.Limits:
        """The container's bandwidth, cpu, disk and memory limits (four getter routes)."""
        kinds = (codec.BANDWIDTH_LIMITS, codec.CPU_LIMITS, codec.DISK_LIMITS, codec.MEMORY_LIMITS)
        names = ("bandwidth", "cpu", "disk", "memory")
        got = await asyncio.gather(*(self._call("GET", self._c(handle, f"/limits/{n}"), k)
                                     for n, k in zip(names, kinds, strict=True)))
        return models.Limits(*got)

    async def net_in(self, handle: str, host_port: int = 0, container_port: int = 0) -> tuple[int, int]:
        body = codec.encode(codec.NET_IN_REQUEST, codec.NetInRequest(handle, host_port, container_port))
        got = await self._call("POST", self._c(handle, "/net/in"), codec.NET_IN, body=body)
        return got.host_port, got.container_port

    async def net_out(self, handle: str, rule: models.NetOutRule) -> None:
        await self._call("POST", self._c(handle, "/net/out"), body=codec.encode(codec.NET_OUT_RULE, rule))

    async def bulk_net_out(self, handle: str, rules: list[models.NetOutRule]) -> None:
        body = codec.encode(codec.NET_OUT_RULES, rules)
        await self._call("POST", self._c(handle, "/net/out/bulk"), body=body)

    async def properties(self, handle: str) -> dict[str, str]:
        return await self._call("GET", self._c(handle, "/properties"), codec.STR_MAP)

    async def property(self, handle: str, key: str) -> str:
        got = await self._call("GET", self._c(handle, f"/properties/{_p(key)}"), codec.PROPERTY_VALUE)
        return got.value

    async def set_property(self, handle: str, key: str, value: str) -> None:
        body = codec.encode(codec.PROPERTY_VALUE, codec.PropertyValue(value))
        await self._call("PUT", self._c(handle, f"/properties/{_p(key)}"), body=body)

    async def remove_property(self, handle: str, key: str) -> None:
        await self._call("DELETE", self._c(handle, f"/properties/{_p(key)}"))

    async def set_grace_time(self, handle: str, grace_ns: int) -> None:
        await self._call("PUT", self._c(handle, "/grace_time"), body=codec.dumps(grace_ns))

    async def stream_in(self, handle: str, destination: str, data: Any, user: str = "") -> None:
        """Send an uncompressed tar (bytes, file-like or async iterable) to `destination` as `user`."""
        target = self._c(handle, "/files?" + urlencode({"destination": destination, "user": user}))
        conn = await self._connect()
        try:
            if isinstance(data, bytes | bytearray):
                status, headers = await conn.send("PUT", target, bytes(data), "application/x-tar")
            else:
                status, headers = await conn.send("PUT", target, None, "application/x-tar",
                                                  chunked=_chunks(data, _READ_SIZE))
            await conn.raise_for(status, headers)
            await conn.read_all(headers)
        finally:
            conn.close()

    async def stream_out(self, handle: str, source: str, user: str = "") -> AsyncIterator[bytes]:
        """A tar stream of `source`; errors before the first byte raise here."""
        target = self._c(handle, "/files?" + urlencode({"source": source, "user": user}))
        conn = await self._connect()
        try:
            status, headers = await conn.send("GET", target)
            await conn.raise_for(status, headers)
        except BaseException:
            conn.close()
            raise

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in conn.body(headers):
                    yield chunk
            finally:
                conn.close()

        return chunks()

    # --------------------------------------------------------------------------- processes

    async def run(self, handle: str, spec: models.ProcessSpec, stdin: Any = None,
                  stdout: Sink | None = None, stderr: Sink | None = None) -> AsyncProcess:
        """Start a process; output goes to the given sinks (no stream connection for None)."""
        body = codec.encode(codec.PROCESS_SPEC, spec)
        return await self._hijack("POST", self._c(handle, "/processes"), body, handle, stdin, stdout, stderr)

    async def attach(self, handle: str, process_id: str, stdin: Any = None,
                     stdout: Sink | None = None, stderr: Sink | None = None) -> AsyncProcess:
        """Attach to a running (or recently exited) process."""
        target = self._c(handle, f"/processes/{_p(process_id)}")
        return await self._hijack("GET", target, None, handle, stdin, stdout, stderr)

    async def _hijack(self, method: str, target: str, body: bytes | None, handle: str,
                      stdin: Any, stdout: Sink | None, stderr: Sink | None) -> AsyncProcess:
        conn = await self._connect()
        try:
            status, headers = await conn.send(method, target, body, close=False)
            await conn.raise_for(status, headers)
            first = codec.decode(codec.PROCESS_PAYLOAD, await conn.reader.readline())
            process = AsyncProcess(conn, first.process_id)
            base = self._c(handle, f"/processes/{_p(first.process_id)}/attaches/{_p(first.stream_id)}")
            sinks = [(f"{base}/{name}", sink) for name, sink in (("stdout", stdout), ("stderr", stderr))
                     if sink is not None]
            streams = await asyncio.gather(*(self._open_stream(t) for t, _ in sinks))
        except BaseException:
            conn.close()
            raise
        process.start(list(zip(streams, (s for _, s in sinks), strict=True)), stdin)
        return process

    async def _open_stream(self, target: str) -> _Conn:
        conn = await self._connect()
        status, headers = await conn.send("GET", target, close=False)
        await conn.raise_for(status, headers)
        return conn


async def _chunks(data: Any, size: int) -> AsyncIterator[bytes]:
    """Bytes from a file-like object (sync or async read) or an async iterable."""
    if hasattr(data, "__aiter__"):
        async for chunk in data:
            yield chunk
        return
    is_async = inspect.iscoroutinefunction(data.read)
    while chunk := await (data.read(size) if is_async else asyncio.to_thread(data.read, size)):
        yield chunk


async def _deliver(sink: Sink, data: bytes) -> None:
    out = sink(data) if callable(sink) else sink.write(data)
    if inspect.isawaitable(out):
        await out


class AsyncProcess:
    """A running process: `wait()` returns its exit status once the exit line and all output arrived."""

    def __init__(self, control: _Conn, process_id: str):
        self.id = process_id
        self._control = control
        # Control messages go out through a duplicate of the socket: when a write fails because the server
        # already closed the connection (stdin still being sent after exit), asyncio's transport would stop
        # reading at once and drop an exit status that is still in the kernel buffer.
        sock = control.writer.get_extra_info("socket")
        self._out = socket.socket(fileno=os.dup(sock.fileno()))
        self._out.setblocking(False)
        self._send_lock = asyncio.Lock()
        self._copies: list[asyncio.Task] = []
        self._stdin: asyncio.Task | None = None
        self._exit: asyncio.Task[int] | None = None

    def start(self, streams: list[tuple[_Conn, Sink]], stdin: Any) -> None:
        self._exit = asyncio.ensure_future(self._read_exit())
        # its failure is wait()'s to report; a process nobody waits for must not log "never retrieved"
        self._exit.add_done_callback(lambda task: task.cancelled() or task.exception())
        self._copies = [asyncio.ensure_future(self._copy(conn, sink)) for conn, sink in streams]
        if stdin is not None:
            self._stdin = asyncio.ensure_future(self._feed_stdin(stdin))

    async def _read_exit(self) -> int:
        try:
            while line := await self._control.reader.readline():
                if not line.strip():
                    continue
                payload = codec.decode(codec.PROCESS_PAYLOAD, line)
                if payload.error is not None:
                    raise errors.GardenError(f"connection: process error: {payload.error}")
                if payload.exit_status is not None:
                    return payload.exit_status
            raise errors.GardenError("connection: decode failed: EOF")
        finally:
            if self._stdin is not None:
                self._stdin.cancel()
            self._control.close()
            self._out.close()

    async def _copy(self, conn: _Conn, sink: Sink) -> None:
        try:
            while chunk := await conn.reader.read(_READ_SIZE):
                await _deliver(sink, chunk)
        finally:
            conn.close()

    async def _feed_stdin(self, stdin: Any) -> None:
        try:
            await self._copy_stdin(stdin)
        except ConnectionError:
            pass  # the process exited and the server closed the connection (the Go client ignores this too)

    async def _copy_stdin(self, stdin: Any) -> None:
        if isinstance(stdin, str | bytes | bytearray):
            stdin = stdin.encode() if isinstance(stdin, str) else bytes(stdin)
            for i in range(0, len(stdin), _STDIN_CHUNK):
                await self.write_stdin(stdin[i:i + _STDIN_CHUNK])
        else:
            async for chunk in _chunks(stdin, _STDIN_CHUNK):
                await self.write_stdin(chunk)
        await self.close_stdin()

    async def _send(self, payload: codec.ProcessPayload) -> None:
        payload.process_id = self.id
        async with self._send_lock:
            if self._out.fileno() == -1:
                raise ConnectionResetError("Connection lost")
            await asyncio.get_running_loop().sock_sendall(self._out, codec.encode(codec.PROCESS_PAYLOAD, payload))

    async def write_stdin(self, data: bytes | str) -> None:
        """Send stdin data (like the Go client, invalid UTF-8 becomes U+FFFD)."""
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        await self._send(codec.ProcessPayload(source=0, data=text))

    async def close_stdin(self) -> None:
        await self._send(codec.ProcessPayload(source=0))

    async def signal(self, signal: int) -> None:
        """Garden signal: models.SIGNAL_TERMINATE (0) or models.SIGNAL_KILL (1)."""
        await self._send(codec.ProcessPayload(signal=signal))

    async def set_tty(self, columns: int, rows: int) -> None:
        size = models.WindowSize(columns, rows)
        await self._send(codec.ProcessPayload(tty=models.TTYSpec(size)))

    async def wait(self) -> int:
        """Exit status (repeatable). Raises GardenError if the server reported an error."""
        assert self._exit is not None
        status = await asyncio.shield(self._exit)
        await asyncio.gather(*(asyncio.shield(t) for t in self._copies), return_exceptions=True)
        return status

    def detach(self) -> None:
        """Close every connection of this attach; the process keeps running on the server."""
        for task in (self._exit, self._stdin, *self._copies):
            if task is not None:
                task.cancel()
        self._control.close()
        self._out.close()


# ------------------------------------------------------------------------------------ sync client


class _LoopThread:
    """A daemon thread running the event loop behind every sync Client."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coro: Any, timeout: float | None = None) -> Any:
        with cls._lock:
            if cls._loop is None:
                cls._loop = asyncio.new_event_loop()
                threading.Thread(target=cls._loop.run_forever, name="garden-client", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, cls._loop).result(timeout)

    @classmethod
    def forget(cls) -> None:
        """In a forked child the thread is gone: start a fresh one on next use."""
        cls._lock = threading.Lock()
        cls._loop = None


os.register_at_fork(after_in_child=_LoopThread.forget)


def _sync(name: str) -> Callable[..., Any]:
    method = getattr(AsyncClient, name)

    @functools.wraps(method)
    def call(self: Client, *args: Any, **kwargs: Any) -> Any:
        return _LoopThread.run(method(self._async, *args, **kwargs))

    return call


class Process:
    """Blocking view of an AsyncProcess (same methods)."""

    def __init__(self, process: AsyncProcess):
        self._process = process
        self.id = process.id

    def wait(self, timeout: float | None = None) -> int:
        return _LoopThread.run(self._process.wait(), timeout)

    def write_stdin(self, data: bytes | str) -> None:
        _LoopThread.run(self._process.write_stdin(data))

    def close_stdin(self) -> None:
        _LoopThread.run(self._process.close_stdin())

    def signal(self, signal: int) -> None:
        _LoopThread.run(self._process.signal(signal))

    def set_tty(self, columns: int, rows: int) -> None:
        _LoopThread.run(self._process.set_tty(columns, rows))

    def detach(self) -> None:
        _LoopThread.run(_on_loop(self._process.detach))


async def _on_loop(fn: Callable[[], None]) -> None:
    """Run a plain function on the client loop's thread."""
    fn()


class Client:
    """Blocking Garden client with AsyncClient's methods; sinks are called on the client thread."""

    def __init__(self, address: str, network: str | None = None):
        self._async = AsyncClient(address, network)

    def run(self, handle: str, spec: models.ProcessSpec, stdin: Any = None,
            stdout: Sink | None = None, stderr: Sink | None = None) -> Process:
        return Process(_LoopThread.run(self._async.run(handle, spec, stdin, stdout, stderr)))

    def attach(self, handle: str, process_id: str, stdin: Any = None,
               stdout: Sink | None = None, stderr: Sink | None = None) -> Process:
        return Process(_LoopThread.run(self._async.attach(handle, process_id, stdin, stdout, stderr)))

    def stream_out(self, handle: str, source: str, user: str = "") -> Iterator[bytes]:
        chunks = _LoopThread.run(self._async.stream_out(handle, source, user))

        async def next_chunk() -> bytes | None:
            return await anext(chunks, None)

        def iterate() -> Iterator[bytes]:
            try:
                while (chunk := _LoopThread.run(next_chunk())) is not None:
                    yield chunk
            finally:
                _LoopThread.run(chunks.aclose())

        return iterate()


for _name in ("ping", "capacity", "create", "list", "lookup", "destroy", "bulk_info", "bulk_metrics", "info",
              "metrics", "stop", "limits", "net_in", "net_out", "bulk_net_out", "properties", "property",
              "set_property", "remove_property", "set_grace_time", "stream_in"):
    setattr(Client, _name, _sync(_name))
