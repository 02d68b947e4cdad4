"""The Garden HTTP server: application, dispatcher, listeners and the expvar-like debug server."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from urllib.parse import parse_qsl

from aiohttp import web

from garden import backend as gb
from garden import errors
from garden.api import codec, hijack
from garden.api.handlers import CONTAINER_ROUTES, MAX_JSON_BODY, Handlers, json_response
from garden.api.routes import Match, Router

log = logging.getLogger(__name__)

_TEXT_HEADERS = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}


def _text(status: int, text: str, allow: tuple[str, ...] = ()) -> web.Response:
    headers = dict(_TEXT_HEADERS)
    if allow:
        headers = {"Allow": ", ".join(allow), **headers}
    return web.Response(status=status, body=text.encode(), headers=headers)


def error_response(err: errors.GardenError) -> web.Response:
    """The error envelope with the error's status (404 for not-found errors, else 500)."""
    return json_response(codec.encode(codec.ENVELOPE, codec.error_envelope(err)), err.status)


def _query(raw: str) -> dict[str, str]:
    """Go's url.Query(), first value of each key."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        out.setdefault(key, value)
    return out


class _Dispatcher:
    def __init__(self, handlers: Handlers):
        self.handlers = handlers
        self.router = Router()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        path, _, raw_query = request.raw_path.partition("?")
        match = self.router.resolve(request.method, path)
        if not isinstance(match, Match):
            if match.allowed:
                return _text(405, "Method Not Allowed\n", match.allowed)
            return _text(404, "404 page not found\n")
        handler = getattr(self.handlers, match.name)
        query = _query(raw_query)
        try:
            if match.name not in CONTAINER_ROUTES:
                return await handler(request, query, **match.params)
            params = dict(match.params)
            container = self.handlers.backend.lookup(params.pop("handle"))
            with container.hold():
                return await handler(request, query, container, **params)
        except errors.GardenError as err:
            if err.status >= 500:
                log.info("%s failed: %s", match.name, err.message)
            return error_response(err)
        except Exception as err:
            log.exception("%s failed", match.name)
            return error_response(errors.GardenError(str(err) or type(err).__name__))


def build_app(backend: gb.Backend) -> web.Application:
    """The Garden API application serving all 28 routes against `backend`."""
    hijacks = hijack.Hijacks()
    handlers = Handlers(backend, hijacks)
    app = web.Application(client_max_size=MAX_JSON_BODY)
    app.router.add_route("*", "/{tail:.*}", _Dispatcher(handlers))

    async def on_shutdown(_app: web.Application) -> None:
        hijacks.stop()  # attached clients detach; their processes keep running

    app.on_shutdown.append(on_shutdown)
    return app


async def start(app: web.Application, *, bind_socket: str | None = None, bind_ip: str | None = None,
                bind_port: int | None = None) -> web.AppRunner:
    """Listen on a unix socket (chmod 0777, stale file removed) and/or TCP; returns the runner."""
    if not bind_socket and bind_port is None:
        raise ValueError("need bind_socket or bind_port")
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    try:
        if bind_socket:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(bind_socket)
            await web.UnixSite(runner, bind_socket).start()
            os.chmod(bind_socket, 0o777)
        if bind_port is not None:
            await web.TCPSite(runner, bind_ip or "127.0.0.1", bind_port, reuse_address=True).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _debug_vars(request: web.Request) -> web.Response:
    rss = _rss_bytes()
    body = {"cmdline": sys.argv, "memstats": {"Alloc": rss, "Sys": rss, "HeapAlloc": rss}}
    return web.Response(body=json.dumps(body).encode() + b"\n", headers={"Content-Type": "application/json"})


def build_debug_app() -> web.Application:
    """Go expvar look-alike for `--debug-bind-port`: GET /debug/vars with memstats.Alloc (RSS)."""
    app = web.Application()
    app.router.add_get("/debug/vars", _debug_vars)
    return app
