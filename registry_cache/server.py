"""The cache's HTTP API: OCI distribution pulls, the Docker token endpoint, staging, pins and GC."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiohttp import web

from registry_cache import gc
from registry_cache.auth import Authenticator
from registry_cache.errors import RegistryError, blob_unknown, manifest_unknown, name_unknown
from registry_cache.pins import PinStore
from registry_cache.pullthrough import PullThrough
from registry_cache.reference import check_digest, check_name, check_reference, is_digest
from registry_cache.staging import Stager
from registry_cache.store import Store

log = logging.getLogger("registry_cache")
API_HEADERS = {"Docker-Distribution-Api-Version": "registry/2.0"}
NAME = "{name:.+}"  # validated by check_name so bad names get NAME_INVALID


@dataclass
class CacheConfig:
    storage: Path
    users_file: Path | None = None
    insecure_registries: set[str] = field(default_factory=set)  # upstreams reached over plain HTTP
    pull_through: str | None = None  # upstream registry for unpinned pulls (off when None)
    token_ttl: int = 3600


@dataclass
class Cache:
    """Everything the handlers share."""

    store: Store
    pins: PinStore
    auth: Authenticator
    stager: Stager
    pull_through: PullThrough | None


def json_error(exc: RegistryError) -> web.Response:
    resp = exc.response()
    resp.headers.update(API_HEADERS)
    return resp


@web.middleware
async def errors_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except RegistryError as exc:
        return json_error(exc)
    except web.HTTPNotFound:
        return json_error(RegistryError(404, "NOT_FOUND", "no such endpoint", {"path": request.path}))
    except web.HTTPMethodNotAllowed:
        return json_error(RegistryError(405, "UNSUPPORTED", "the cache is read-only; push is not supported",
                                        {"method": request.method}))
    resp.headers.update(API_HEADERS)
    return resp


def cache_of(request: web.Request) -> Cache:
    return request.app["cache"]


async def base(request: web.Request) -> web.Response:
    cache_of(request).auth.require(request, "pull")
    return web.json_response({})


async def token(request: web.Request) -> web.Response:
    """Docker token endpoint: Basic credentials in, a short-lived bearer token out."""
    cache = cache_of(request)
    who = cache.auth.identify(request)
    if who is None:
        raise RegistryError(401, "UNAUTHORIZED", "valid credentials required to get a token")
    tok = cache.auth.issue(who)
    return web.json_response({"token": tok, "access_token": tok, "expires_in": cache.auth.ttl})


async def resolve_manifest(cache: Cache, name: str, ref: str) -> tuple[bytes, str, str]:
    digest = ref if is_digest(ref) else cache.pins.resolve(name, ref)
    if digest and (cache.pins.serves(name, digest) or (cache.pull_through and cache.pull_through.serves(
            name, digest))) and (stored := cache.store.manifest(digest)):
        return stored[0], stored[1], digest
    if cache.pull_through:
        return await cache.pull_through.manifest(name, ref)
    raise manifest_unknown(name, ref)


def accepts(request: web.Request, media_type: str) -> bool:
    accept = ",".join(request.headers.getall("Accept", []))
    types = {part.split(";")[0].strip() for part in accept.split(",") if part.strip()}
    return not types or media_type in types or "*/*" in types


async def manifest(request: web.Request) -> web.Response:
    cache = cache_of(request)
    cache.auth.require(request, "pull")
    name, ref = check_name(request.match_info["name"]), check_reference(request.match_info["ref"])
    raw, media_type, digest = await resolve_manifest(cache, name, ref)
    if not is_digest(ref) and not accepts(request, media_type):
        raise RegistryError(404, "MANIFEST_UNKNOWN", f"manifest is {media_type}, which the Accept header "
                            "does not include", {"name": name, "reference": ref, "mediaType": media_type})
    headers = {"Docker-Content-Digest": digest, "Etag": f'"{digest}"', "Content-Type": media_type}
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(raw))
        return web.Response(headers=headers)
    return web.Response(body=raw, headers=headers)


async def blob(request: web.Request) -> web.StreamResponse:
    cache = cache_of(request)
    cache.auth.require(request, "pull")
    name, digest = check_name(request.match_info["name"]), check_digest(request.match_info["digest"])
    headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream",
               "Accept-Ranges": "bytes", "Etag": f'"{digest}"'}
    pinned = cache.pins.serves(name, digest)
    if (pinned or cache.pull_through) and cache.store.has_blob(digest):
        return web.FileResponse(cache.store.blob_path(digest), headers=headers)
    if not cache.pull_through:
        raise blob_unknown(digest)
    flight = await cache.pull_through.blob(name, digest)
    if flight is None:
        return web.FileResponse(cache.store.blob_path(digest), headers=headers)
    size, chunks = flight
    resp = web.StreamResponse(headers=headers)
    if size is not None:
        resp.content_length = size
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    try:
        async for chunk in chunks:
            await resp.write(chunk)
    except RegistryError as exc:  # headers are gone: cut the connection so the client sees a short body
        log.warning("aborted %s: %s", request.path, exc.message)
        if request.transport:
            request.transport.abort()
        return resp
    await resp.write_eof()
    return resp


async def tags_list(request: web.Request) -> web.Response:
    cache = cache_of(request)
    cache.auth.require(request, "pull")
    name = check_name(request.match_info["name"])
    if not cache.pins.has_name(name):
        raise name_unknown(name)
    tags = cache.pins.tags(name)
    last = request.query.get("last")
    if last:
        tags = [t for t in tags if t > last]
    headers = {}
    if "n" in request.query:
        try:
            n = int(request.query["n"])
            if n < 0:
                raise ValueError
        except ValueError:
            raise RegistryError(400, "PAGINATION_NUMBER_INVALID", "n must be a non-negative integer",
                                {"n": request.query["n"]}) from None
        if n < len(tags) and n > 0:
            headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={tags[n - 1]}>; rel="next"'
        tags = tags[:n]
    return web.json_response({"name": name, "tags": tags}, headers=headers)


async def stage(request: web.Request) -> web.StreamResponse:
    """POST /stage {"ref", "username"?, "password"?}; `?progress=1` streams NDJSON events first."""
    cache = cache_of(request)
    who = cache.auth.require(request, "stage")
    try:
        body = await request.json()
        ref = body["ref"]
        if not isinstance(ref, str) or not isinstance(body.get("username") or "", str) or not isinstance(
                body.get("password") or "", str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise RegistryError(400, "INVALID_REQUEST", 'body must be JSON {"ref": str, "username"?: str, '
                            '"password"?: str}') from None
    username, password = body.get("username") or None, body.get("password") or None
    del body
    if request.query.get("progress") != "1":
        pin = await cache.stager.stage(ref, username, password, staged_by=who.name)
        log.info("staged %s as %s@%s for %s", pin.source, pin.name, pin.digest, who.name)
        return web.json_response(result_of(pin, request.host))
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    events: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(cache.stager.stage(ref, username, password, who.name, events.put_nowait))
    while not task.done() or not events.empty():
        getter = asyncio.ensure_future(events.get())
        await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            await resp.write(json.dumps(getter.result()).encode() + b"\n")
        else:
            getter.cancel()
    try:
        line = {"result": result_of(task.result(), request.host)}
    except RegistryError as exc:
        line = {"error": exc.body()["errors"][0], "status": exc.status}
    await resp.write(json.dumps(line).encode() + b"\n")
    await resp.write_eof()
    return resp


async def unsupported(request: web.Request) -> web.Response:
    """Anything else under /v2/: push and delete are refused, unknown reads are 404."""
    if request.method in ("GET", "HEAD"):
        raise RegistryError(404, "NOT_FOUND", "no such endpoint", {"path": request.path})
    raise RegistryError(405, "UNSUPPORTED", "the cache is read-only; push and delete are not supported",
                        {"method": request.method})


def result_of(pin, host: str) -> dict:
    return {"name": pin.name, "digest": pin.digest, "reference": pin.reference(host), "pin": pin.id}


async def list_pins(request: web.Request) -> web.Response:
    cache = cache_of(request)
    cache.auth.require(request, "pull")
    return web.json_response([p.public() for p in cache.pins.pins.values()])


async def unpin(request: web.Request) -> web.Response:
    cache = cache_of(request)
    cache.auth.require(request, "admin")
    pin = cache.pins.remove(request.match_info["id"])
    if pin is None:
        raise RegistryError(404, "PIN_UNKNOWN", "no such pin", {"id": request.match_info["id"]})
    return web.json_response(pin.public())


async def collect(request: web.Request) -> web.Response:
    cache = cache_of(request)
    cache.auth.require(request, "admin")
    result = await gc.collect(cache.store, cache.pins, cache.stager.commit_lock)
    return web.json_response(asdict(result))


def make_app(config: CacheConfig) -> web.Application:
    """Build the application; needs no upstream to start."""
    store = Store(config.storage)
    pins = PinStore(config.storage)
    pull_through = None
    if config.pull_through:
        insecure = config.pull_through in config.insecure_registries
        pull_through = PullThrough(store, config.pull_through, insecure)
    cache = Cache(store, pins, Authenticator(config.users_file, config.token_ttl),
                  Stager(store, pins, config.insecure_registries), pull_through)
    app = web.Application(middlewares=[errors_middleware], client_max_size=1 << 20)
    app["cache"] = cache
    if pull_through:
        app.on_cleanup.append(lambda _: pull_through.close())
    r = app.router
    r.add_get("/v2/", base)
    r.add_get("/token", token)
    r.add_get(f"/v2/{NAME}/manifests/{{ref}}", manifest)
    r.add_get(f"/v2/{NAME}/blobs/{{digest}}", blob)
    r.add_get(f"/v2/{NAME}/tags/list", tags_list, allow_head=False)
    r.add_route("*", "/v2/{tail:.*}", unsupported)
    r.add_post("/stage", stage)
    r.add_get("/pins", list_pins)
    r.add_delete("/pins/{id}", unpin)
    r.add_post("/gc", collect)
    return app
