"""A loopback HTTP proxy in front of a real registry that injects faults into the first blob GETs."""

from __future__ import annotations

import aiohttp
from aiohttp import web


class FaultyProxy:
    """Forwards GETs to `upstream`; blob GETs first consume `faults`: "503" answers 503 with Retry-After: 0,
    "cut" sends the headers and half the body, then drops the connection."""

    def __init__(self, upstream: str, faults: list[str]) -> None:
        self.upstream = upstream
        self.faults = list(faults)
        self.injected: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> FaultyProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        fault = self.faults.pop(0) if "/blobs/" in request.path and self.faults else ""
        if fault == "503":
            self.injected.append(fault)
            return web.Response(status=503, headers={"Retry-After": "0"})
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept", "authorization")}
        async with self._session.get(f"http://{self.upstream}{request.path_qs}", headers=headers,
                                     allow_redirects=False) as upstream:
            body = await upstream.read()
            out = web.StreamResponse(status=upstream.status)
            for key in ("Content-Type", "Docker-Content-Digest", "WWW-Authenticate", "Location"):
                if key in upstream.headers:
                    out.headers[key] = upstream.headers[key]
            out.content_length = len(body)
            await out.prepare(request)
            if fault == "cut":
                self.injected.append(fault)
                await out.write(body[: len(body) // 2])
                assert request.transport is not None
                request.transport.close()
                return out
            await out.write(body)
            await out.write_eof()
            return out
