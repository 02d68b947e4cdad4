"""Route handlers: decode the request, call the Backend, encode the answer (spec §4).

Handlers named in CONTAINER_ROUTES get the looked-up container and run inside its grace-time hold;
the others get the backend only. Every handler returns an aiohttp response; errors are raised as
`garden.errors` and turned into envelopes by the dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from garden import backend as gb
from garden import errors, models
from garden.api import codec, hijack

log = logging.getLogger(__name__)

MAX_JSON_BODY = 1 << 20
Query = Mapping[str, str]
JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(body: bytes, status: int = 200) -> web.Response:
    """An encoded JSON body (already newline-terminated) as `application/json`."""
    return web.Response(body=body, status=status, headers=JSON_HEADERS)


def empty() -> web.Response:
    """Garden's empty success: `{}`."""
    return web.Response(body=codec.EMPTY, headers=JSON_HEADERS)


async def read_json(request: web.Request) -> bytes:
    """The request body, at most MAX_JSON_BODY bytes (Go's MaxBytesReader message beyond)."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.BadRequestError("http: request body too large") from None


class Handlers:
    """One method per route name in garden.api.routes.ROUTES."""

    def __init__(self, backend: gb.Backend, hijacks: hijack.Hijacks):
        self.backend = backend
        self.hijacks = hijacks

    # ------------------------------------------------------------------ server-wide routes

    async def Ping(self, request: web.Request, query: Query) -> web.Response:
        await self.backend.ping()
        return empty()

    async def Capacity(self, request: web.Request, query: Query) -> web.Response:
        return json_response(codec.encode(codec.CAPACITY, await self.backend.capacity()))

    async def List(self, request: web.Request, query: Query) -> web.Response:
        handles = self.backend.list(dict(query))
        return json_response(codec.encode(codec.HANDLES, codec.Handles(list(handles))))

    async def Create(self, request: web.Request, query: Query) -> web.Response:
        spec = codec.decode(codec.CONTAINER_SPEC, await read_json(request))
        handle = await self.backend.create(spec)
        log.info("created container %s", handle)
        return json_response(codec.encode(codec.HANDLE_RESPONSE, codec.HandleResponse(handle)))

    async def Destroy(self, request: web.Request, query: Query, handle: str) -> web.Response:
        await self.backend.destroy(handle)
        log.info("destroyed container %s", handle)
        return empty()

    async def BulkInfo(self, request: web.Request, query: Query) -> web.Response:
        info = lambda handle: self.backend.lookup(handle).info()  # noqa: E731
        return await self._bulk(query, codec.INFO_ENTRIES, models.ContainerInfo, info)

    async def BulkMetrics(self, request: web.Request, query: Query) -> web.Response:
        return await self._bulk(query, codec.METRICS_ENTRIES, models.Metrics, self.backend.metrics)

    async def _bulk(self, query: Query, kind: codec.Map, zero: type,
                    get: Callable[[str], Awaitable[object]]) -> web.Response:
        handles = {h for h in query.get("handles", "").split(",") if h}

        async def one(handle: str) -> codec.BulkEntry:
            try:
                return codec.BulkEntry(await get(handle))
            except Exception as err:  # per-handle failures never fail the request
                return codec.BulkEntry(zero(), codec.generic_envelope(err))

        entries = await asyncio.gather(*(one(h) for h in handles))
        return json_response(codec.encode(kind, dict(zip(handles, entries, strict=True))))

    # ------------------------------------------------------------------ per-container routes

    async def Info(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        return json_response(codec.encode(codec.CONTAINER_INFO, await container.info()))

    async def Metrics(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        return json_response(codec.encode(codec.METRICS, await container.metrics()))

    async def Stop(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        stop = codec.decode(codec.STOP_REQUEST, await read_json(request))
        await container.stop(stop.kill)
        return empty()

    async def StreamIn(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        await container.stream_in(query.get("user", ""), query.get("destination", ""),
                                  request.content.iter_any())
        return empty()

    async def StreamOut(self, request: web.Request, query: Query,
                        container: gb.Container) -> web.StreamResponse:
        chunks = container.stream_out(query.get("user", ""), query.get("source", ""))
        first = await anext(chunks, b"")  # a failure here still gets an envelope
        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        await response.prepare(request)
        try:
            if first:
                await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except errors.GardenError as err:  # headers are out: the client sees a truncated stream
            log.warning("stream-out of %s failed: %s", container.handle, err.message)
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    async def CurrentBandwidthLimits(self, request: web.Request, query: Query,
                                     container: gb.Container) -> web.Response:
        return json_response(codec.encode(codec.BANDWIDTH_LIMITS, container.current_limits().bandwidth))

    async def CurrentCPULimits(self, request: web.Request, query: Query,
                               container: gb.Container) -> web.Response:
        return json_response(codec.encode(codec.CPU_LIMITS, container.current_limits().cpu))

    async def CurrentDiskLimits(self, request: web.Request, query: Query,
                                container: gb.Container) -> web.Response:
        return json_response(codec.encode(codec.DISK_LIMITS, container.current_limits().disk))

    async def CurrentMemoryLimits(self, request: web.Request, query: Query,
                                  container: gb.Container) -> web.Response:
        return json_response(codec.encode(codec.MEMORY_LIMITS, container.current_limits().memory))

    async def NetIn(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        req = codec.decode(codec.NET_IN_REQUEST, await read_json(request))
        host_port, container_port = await container.net_in(req.host_port, req.container_port)
        return json_response(codec.encode(codec.NET_IN, models.NetIn(host_port, container_port)))

    async def NetOut(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        await container.net_out([codec.decode(codec.NET_OUT_RULE, await read_json(request))])
        return empty()

    async def BulkNetOut(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        await container.net_out(codec.decode(codec.NET_OUT_RULES, await read_json(request)))
        return empty()

    async def SetGraceTime(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        grace_ns = codec.decode(codec.DURATION, await read_json(request))
        try:
            container.set_grace_time(grace_ns)
        except Exception as err:  # Go only logs these
            log.warning("set grace time of %s: %s", container.handle, err)
        return empty()

    async def Properties(self, request: web.Request, query: Query, container: gb.Container) -> web.Response:
        return json_response(codec.encode(codec.STR_MAP, container.properties()))

    async def Property(self, request: web.Request, query: Query,
                       container: gb.Container, key: str) -> web.Response:
        value = container.property(key)
        return json_response(codec.encode(codec.PROPERTY_VALUE, codec.PropertyValue(value)))

    async def SetProperty(self, request: web.Request, query: Query,
                          container: gb.Container, key: str) -> web.Response:
        body = codec.decode(codec.PROPERTY_VALUE, await read_json(request))
        container.set_property(key, body.value)
        return empty()

    async def RemoveProperty(self, request: web.Request, query: Query,
                             container: gb.Container, key: str) -> web.Response:
        container.remove_property(key)
        return empty()

    async def Run(self, request: web.Request, query: Query, container: gb.Container) -> web.StreamResponse:
        spec = codec.decode(codec.PROCESS_SPEC, await read_json(request))
        process = await container.run(spec)
        return await hijack.serve_process(request, process, 201, self.hijacks)

    async def Attach(self, request: web.Request, query: Query,
                     container: gb.Container, pid: str) -> web.StreamResponse:
        process = container.attach(pid)
        return await hijack.serve_process(request, process, 200, self.hijacks)

    async def Stdout(self, request: web.Request, query: Query, container: gb.Container, pid: str,
                     streamid: str) -> web.StreamResponse:
        return await self._stream(request, container, pid, streamid, gb.STDOUT)

    async def Stderr(self, request: web.Request, query: Query, container: gb.Container, pid: str,
                     streamid: str) -> web.StreamResponse:
        return await self._stream(request, container, pid, streamid, gb.STDERR)

    async def _stream(self, request: web.Request, container: gb.Container, pid: str, stream_id: str,
                      fd: int) -> web.StreamResponse:
        try:
            stream = container.attach(pid).stream(stream_id)
        except errors.ProcessNotFoundError:
            stream = None  # like an unknown stream id: 200, then close
        return await hijack.serve_stream(request, stream, fd, self.hijacks)


# Routes whose `:handle` is looked up and held (grace time paused) for the whole request.
CONTAINER_ROUTES = frozenset({
    "Info", "Metrics", "Stop", "StreamIn", "StreamOut", "CurrentBandwidthLimits", "CurrentCPULimits",
    "CurrentDiskLimits", "CurrentMemoryLimits", "NetIn", "NetOut", "BulkNetOut", "SetGraceTime",
    "Properties", "Property", "SetProperty", "RemoveProperty", "Run", "Attach", "Stdout", "Stderr",
})
