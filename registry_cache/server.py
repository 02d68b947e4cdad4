"""The cache's HTTP API: OCI distribution pulls, the Docker token endpoint, staging, pins and GC.

Errors follow the distribution spec: a manifest reference that is no tag or valid digest names no manifest
(404 MANIFEST_UNKNOWN); a blob URL whose `<digest>` is no digest names no blob (404), a malformed digest is
400 DIGEST_INVALID. Registry writes (manifest PUT and DELETE, blob DELETE, uploads) are checked as a registry
checks them (NAME_INVALID, TAG_INVALID, DIGEST_INVALID, MANIFEST_INVALID, NAME_UNKNOWN) and then refused:
403 DENIED without the permission the write would take, else 405 UNSUPPORTED (the cache is filled by staging).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

from aiohttp import web

from images.manifest import MAX_DOCUMENT, ManifestError
from images.manifest import load as parse_manifest
from registry_cache import gc
from registry_cache.auth import Authenticator, Identity
from registry_cache.errors import (
    RegistryError,
    blob_unknown,
    digest_invalid,
    manifest_invalid,
    manifest_unknown,
    method_unsupported,
    name_unknown,
    unsupported_endpoint,
    upload_unknown,
)
from registry_cache.pins import PinStore
from registry_cache.pullthrough import PullThrough
from registry_cache.reference import (
    blob_digest,
    check_digest,
    check_name,
    is_digest,
    manifest_reference,
    push_reference,
)
from registry_cache.staging import Stager
from registry_cache.store import Store

log = logging.getLogger("registry_cache")
API_HEADERS = {"Docker-Distribution-Api-Version": "registry/2.0"}
NAME = "{name:.+}"  # validated by check_name so bad names get NAME_INVALID
READ_ONLY = "GET, HEAD"  # the methods every registry resource of the cache allows


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
        return json_error(unsupported_endpoint(request.path))
    except web.HTTPMethodNotAllowed as exc:
        allow = READ_ONLY if request.path.startswith("/v2/") else exc.headers["Allow"]
        return json_error(method_unsupported(request.method, allow))
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
    if ":" in ref and not is_digest(ref):
        raise manifest_unknown(name, ref, "the cache holds sha256 content only")
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
    name = check_name(request.match_info["name"])
    ref = manifest_reference(name, request.match_info["ref"])
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
    name, digest = check_name(request.match_info["name"]), blob_digest(request.match_info["digest"])
    if not is_digest(digest):
        raise blob_unknown(digest, "the cache holds sha256 content only")
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


@dataclass(frozen=True)
class Write:
    """A registry write the cache refuses: the permission it would take, and what to do instead."""

    perm: str
    what: str
    instead: str


PUSH = Write("stage", "push", "the cache takes no pushes through the registry API; stage images with POST /stage")
DELETE = Write("admin", "delete", "the cache deletes nothing through the registry API; unpin with "
               "DELETE /pins/<id>, then POST /gc")


def refuse(cache: Cache, who: Identity, name: str, write: Write, allow: str = READ_ONLY) -> NoReturn:
    """The answer to a well-formed write: NAME_UNKNOWN, DENIED without the permission, else UNSUPPORTED."""
    if cache.pull_through is None and not cache.pins.has_name(name):
        raise name_unknown(name)
    if write.perm not in who.perms:
        raise RegistryError(403, "DENIED", f"{who.name} may not {write.what}: the cache is pull-only",
                            {"name": name})
    raise RegistryError(405, "UNSUPPORTED", write.instead, {"name": name}, {"Allow": allow})


async def read_manifest(request: web.Request) -> bytes:
    """A pushed manifest's bytes, at most MAX_DOCUMENT (413 MANIFEST_INVALID beyond)."""
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_DOCUMENT:
            raise manifest_invalid(f"larger than {MAX_DOCUMENT} bytes", 413)
    return bytes(body)


async def push_manifest(request: web.Request) -> web.Response:
    """PUT /v2/<name>/manifests/<ref>: checked as a registry checks a push, then refused."""
    cache = cache_of(request)
    who = cache.auth.require(request, "pull")
    name, ref = check_name(request.match_info["name"]), push_reference(request.match_info["ref"])
    raw = await read_manifest(request)
    try:
        parse_manifest(raw, request.headers.get("Content-Type", ""))
    except ManifestError as exc:
        raise manifest_invalid(str(exc)) from None
    if ":" in ref:
        algorithm = ref.split(":", 1)[0]
        if (actual := f"{algorithm}:{hashlib.new(algorithm, raw).hexdigest()}") != ref:
            raise digest_invalid(ref, f"the manifest's digest is {actual}")
    refuse(cache, who, name, PUSH)


async def delete_manifest(request: web.Request) -> web.Response:
    cache = cache_of(request)
    who = cache.auth.require(request, "pull")
    name = check_name(request.match_info["name"])
    manifest_reference(name, request.match_info["ref"])
    refuse(cache, who, name, DELETE)


async def delete_blob(request: web.Request) -> web.Response:
    cache = cache_of(request)
    who = cache.auth.require(request, "pull")
    name = check_name(request.match_info["name"])
    blob_digest(request.match_info["digest"])
    refuse(cache, who, name, DELETE)


async def start_upload(request: web.Request) -> web.Response:
    """POST /v2/<name>/blobs/uploads/ (plain, `?digest=` or `?mount=&from=`): checked, then refused."""
    cache = cache_of(request)
    who = cache.auth.require(request, "pull")
    name = check_name(request.match_info["name"])
    for param in ("digest", "mount"):
        if param in request.query:
            check_digest(request.query[param])
    if "from" in request.query:
        check_name(request.query["from"])
    refuse(cache, who, name, PUSH, allow="")


async def upload_session(request: web.Request) -> web.Response:
    """Any request to an upload location: the cache never starts an upload, so none is known."""
    cache_of(request).auth.require(request, "pull")
    raise upload_unknown(check_name(request.match_info["name"]))


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
    r.add_put(f"/v2/{NAME}/manifests/{{ref}}", push_manifest)
    r.add_delete(f"/v2/{NAME}/manifests/{{ref}}", delete_manifest)
    r.add_get(f"/v2/{NAME}/blobs/{{digest}}", blob)
    r.add_delete(f"/v2/{NAME}/blobs/{{digest}}", delete_blob)
    r.add_post(f"/v2/{NAME}/blobs/uploads/", start_upload)
    r.add_route("*", f"/v2/{NAME}/blobs/uploads/{{session:.*}}", upload_session)
    r.add_get(f"/v2/{NAME}/tags/list", tags_list)
    r.add_post("/stage", stage)
    r.add_get("/pins", list_pins)
    r.add_delete("/pins/{id}", unpin)
    r.add_post("/gc", collect)
    return app
