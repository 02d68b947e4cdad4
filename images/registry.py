"""Async client for pulling from an OCI / Docker v2 registry.

`/v2/` ping, Bearer tokens per repository scope (refreshed on 401), Basic auth, the full Accept list,
redirects that never carry Authorization to another host, streamed blob downloads verified by size and
sha256, retries with exponential backoff on connection errors, 429 and 5xx, and timeouts.
Credentials live only in this object's memory and never appear in messages.
Used by images (pulls) and by registry_cache (staging, pull-through), which maps FetchError to OCI errors.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp

from images.manifest import ACCEPT, Descriptor

CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
REDIRECTS = (301, 302, 303, 307, 308)
RETRY_STATUS = (408, 429, 500, 502, 503, 504)
CHUNK = 1 << 20
T = TypeVar("T")


@dataclass
class TransferStats:
    """Bytes of blobs received (shared by the clients of one provider)."""

    bytes_downloaded: int = 0


class FetchError(Exception):
    """The registry could not give us what we asked for; the message says why (never a credential)."""


class AccessDeniedError(FetchError):
    """The registry or its token server refused us (credentials missing or wrong, or no access)."""


class NotFoundError(FetchError):
    """The registry has no such manifest or blob (HTTP 404)."""


class _Retry(Exception):
    """A transient failure: try again after a backoff (or `delay` seconds if the server said so)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


def is_loopback(registry: str) -> bool:
    """Registries on 127.0.0.0/8, ::1 or localhost are spoken to over plain HTTP (like Docker)."""
    host = urlsplit(f"//{registry}").hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """One registry, one optional set of credentials, bearer tokens cached per (realm, service, scope)."""

    def __init__(self, session: aiohttp.ClientSession, registry: str, *, insecure: bool = False,
                 username: str = "", password: str = "", retries: int = 3, backoff: float = 0.2,
                 stats: TransferStats | None = None) -> None:
        self.registry = registry
        self.base = f"{'http' if insecure or is_loopback(registry) else 'https'}://{registry}"
        self._session = session
        self._basic = basic_header(username, password) if username else ""
        self._challenge: str | None = None
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self.retries, self.backoff = retries, backoff
        self.stats = stats or TransferStats()

    async def manifest(self, repo: str, reference: str) -> tuple[bytes, str]:
        """(exact bytes, Content-Type) of `repo`'s manifest or index `reference`."""
        async def attempt() -> tuple[bytes, str]:
            async with await self._get(repo, f"/v2/{repo}/manifests/{reference}", {"Accept": ACCEPT},
                                       f"manifest {reference}") as resp:
                return await resp.read(), resp.headers.get("Content-Type", "")
        return await self._retrying(attempt)

    async def blob_bytes(self, repo: str, desc: Descriptor) -> bytes:
        """A small blob (a config), verified by size and sha256."""
        async def attempt() -> bytes:
            parts: list[bytes] = []
            await self._stream(repo, desc, parts.append)
            return b"".join(parts)
        return await self._retrying(attempt)

    async def blob_to_file(self, repo: str, desc: Descriptor, path: str) -> None:
        """Stream a blob into `path` (rewritten on each attempt), verified by size and sha256."""
        async def attempt() -> None:
            with open(path, "wb") as f:
                await self._stream(repo, desc, f.write)
        await self._retrying(attempt)

    @asynccontextmanager
    async def blob_stream(self, repo: str, digest: str) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
        """(Content-Length, chunks) of a blob, not verified: for callers that hash what they keep.

        Getting the response is retried; a body that breaks off raises aiohttp's error to the caller.
        """
        async with await self._retrying(lambda: self._blob_response(repo, digest)) as resp:
            yield resp.content_length, resp.content.iter_chunked(CHUNK)

    def forget_credentials(self) -> None:
        """Drop the credentials and every cached token (the client is anonymous afterwards)."""
        self._basic = ""
        self._tokens.clear()

    async def _blob_response(self, repo: str, digest: str) -> aiohttp.ClientResponse:
        return await self._get(repo, f"/v2/{repo}/blobs/{digest}", {}, f"blob {digest}")

    async def _stream(self, repo: str, desc: Descriptor, write: Callable[[bytes], object]) -> None:
        digest, size = hashlib.sha256(), 0
        async with await self._blob_response(repo, desc.digest) as resp:
            try:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > desc.size:
                        raise FetchError(f"blob {desc.digest} is larger than its {desc.size} bytes")
                    digest.update(chunk)
                    self.stats.bytes_downloaded += len(chunk)
                    write(chunk)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _Retry(f"download of {desc.digest} broke off ({type(exc).__name__})") from None
        if size != desc.size:
            raise FetchError(f"blob {desc.digest} is truncated: {size} of {desc.size} bytes")
        if "sha256:" + digest.hexdigest() != desc.digest:
            raise FetchError(f"blob {desc.digest} does not match its digest (got sha256:{digest.hexdigest()})")

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        for n in range(self.retries + 1):
            try:
                return await attempt()
            except _Retry as exc:
                if n == self.retries:
                    raise FetchError(f"{exc} (after {n + 1} attempts)") from None
                await asyncio.sleep(exc.delay if exc.delay is not None else self.backoff * 2 ** n)
        raise AssertionError("unreachable")

    async def _get(self, repo: str, path: str, headers: dict[str, str], what: str) -> aiohttp.ClientResponse:
        """A 200 response for `path` (the caller releases it); 401 triggers one token refresh."""
        scope = f"repository:{repo}:pull"
        for refreshed in (False, True):
            resp = await self._follow(self.base + path, headers, await self._authorization(scope, refreshed))
            if resp.status == 200:
                return resp
            resp.release()
            if resp.status == 401 and not refreshed:
                self._challenge = resp.headers.get("WWW-Authenticate", self._challenge or "")
                continue
            if resp.status in (401, 403):
                how = "with the given credentials" if self._basic else "without credentials"
                raise AccessDeniedError(f"registry {self.registry} denied access to {repo} {how}")
            if resp.status in RETRY_STATUS:
                retry_after = resp.headers.get("Retry-After", "")
                raise _Retry(f"registry {self.registry} answered {resp.status} for {what}",
                             min(float(retry_after), 10.0) if retry_after.isdigit() else None)
            if resp.status == 404:
                raise NotFoundError(f"{what} not found in {self.registry}/{repo}")
            raise FetchError(f"registry {self.registry} answered {resp.status} for {what}")
        raise AssertionError("unreachable")

    async def _follow(self, url: str, headers: dict[str, str], authorization: str) -> aiohttp.ClientResponse:
        """GET following redirects by hand; Authorization is only ever sent to the registry's own host."""
        origin = urlsplit(self.base).netloc
        for _ in range(6):
            send = dict(headers)
            if authorization and urlsplit(url).netloc == origin:
                send["Authorization"] = authorization
            try:
                resp = await self._session.get(url, headers=send, allow_redirects=False)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise _Retry(f"registry {self.registry} is unreachable ({type(exc).__name__})") from None
            if resp.status not in REDIRECTS:
                return resp
            url = urljoin(url, resp.headers.get("Location", ""))
            resp.release()
        raise FetchError(f"too many redirects from {self.registry}")

    async def _authorization(self, scope: str, refresh: bool) -> str:
        """The Authorization value for `scope` ("" if the registry needs none)."""
        if self._challenge is None:
            await self.ping()
        scheme, _, _ = (self._challenge or "").partition(" ")
        params = dict(CHALLENGE_PARAM.findall(self._challenge or ""))
        if scheme.lower() == "basic":
            if not self._basic:
                raise AccessDeniedError(f"registry {self.registry} requires credentials")
            return self._basic
        if scheme.lower() != "bearer":
            return ""
        if "realm" not in params:
            raise FetchError(f"registry {self.registry} sent a Bearer challenge without a realm")
        key = (params["realm"], params.get("service", ""), scope)
        cached = self._tokens.get(key)
        if cached and not refresh and cached[1] > time.monotonic():
            return cached[0]
        token, expires_in = await self._fetch_token(params["realm"], params.get("service", ""), scope)
        self._tokens[key] = (f"Bearer {token}", time.monotonic() + max(expires_in, 60) - 10)
        return self._tokens[key][0]

    async def ping(self) -> None:
        """`GET /v2/`: learns whether and how the registry wants us to authenticate."""
        async def attempt() -> None:
            resp = await self._follow(self.base + "/v2/", {}, "")
            resp.release()
            if resp.status in RETRY_STATUS:
                raise _Retry(f"registry {self.registry} answered {resp.status} to /v2/")
            if resp.status not in (200, 401):
                raise FetchError(f"{self.registry} is not a v2 registry (/v2/ answered {resp.status})")
            self._challenge = resp.headers.get("WWW-Authenticate", "") if resp.status == 401 else ""
        await self._retrying(attempt)

    async def _fetch_token(self, realm: str, service: str, scope: str) -> tuple[str, int]:
        query = {"scope": scope, **({"service": service} if service else {})}
        headers = {"Authorization": self._basic} if self._basic else {}

        async def attempt() -> tuple[str, int]:
            try:
                async with self._session.get(realm, params=query, headers=headers) as resp:
                    if resp.status in (401, 403):
                        why = "rejected the credentials" if self._basic else "requires credentials"
                        raise AccessDeniedError(f"the token server of {self.registry} {why}")
                    if resp.status in RETRY_STATUS:
                        raise _Retry(f"the token server of {self.registry} answered {resp.status}")
                    if resp.status != 200:
                        raise FetchError(f"the token server of {self.registry} answered {resp.status}")
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise _Retry(f"the token server of {self.registry} is unreachable ({type(exc).__name__})") from None
            except ValueError:
                raise FetchError(f"the token server of {self.registry} answered with invalid JSON") from None
            token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise FetchError(f"the token server of {self.registry} returned no token")
            expires = body.get("expires_in")
            return token, expires if isinstance(expires, int) else 60
        return await self._retrying(attempt)


def basic_header(username: str, password: str) -> str:
    """An `Authorization: Basic …` value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def new_session(timeout: float = 30.0) -> aiohttp.ClientSession:
    """A session for registry clients: connect/read timeouts, no automatic decompression, no env proxies."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout),
                                 auto_decompress=False, trust_env=False,
                                 connector=aiohttp.TCPConnector(limit=max(8, os.cpu_count() or 1)))
