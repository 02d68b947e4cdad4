"""Async client for an upstream OCI registry: token/basic auth, redirects without leaking Authorization,
manifests with the full Accept list, streamed blobs.

Credentials live only in this object's memory; `close()` forgets them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urljoin, urlsplit

import aiohttp

from registry_cache import mediatypes
from registry_cache.errors import RegistryError

CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 1 << 20


class UpstreamError(RegistryError):
    """The upstream registry failed or refused; the message names the upstream, never a credential."""


class UpstreamClient:
    """One upstream registry, one set of (optional) credentials, per-scope bearer tokens."""

    def __init__(self, registry: str, *, insecure: bool = False, username: str | None = None,
                 password: str | None = None, timeout: float = 30.0) -> None:
        self.registry = registry
        self.base = f"{'http' if insecure else 'https'}://{registry}"
        self._basic = basic_header(username, password or "") if username else None
        self._tokens: dict[str, str] = {}  # scope -> "Bearer …" / "Basic …"
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout),
            auto_decompress=False)

    async def close(self) -> None:
        self._basic = None
        self._tokens.clear()
        await self._session.close()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """(exact bytes, media type, digest) of `repo:ref`; a digest ref is verified against the body."""
        async with self._get(repo, f"/v2/{repo}/manifests/{ref}", {"Accept": mediatypes.ACCEPT}) as resp:
            if resp.status == 404:
                raise UpstreamError(404, "MANIFEST_UNKNOWN", f"{self.registry}/{repo}:{ref} not found "
                                    "upstream", {"name": repo, "reference": ref})
            raw = await resp.read()
            content_type = resp.headers.get("Content-Type", "")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if ref.startswith("sha256:") and digest != ref:
            raise UpstreamError(502, "DIGEST_INVALID", f"upstream manifest {repo}@{ref} has digest {digest}",
                                {"expected": ref, "actual": digest})
        try:
            media_type, _ = mediatypes.parse(raw, content_type)
        except mediatypes.ManifestError as exc:
            raise UpstreamError(502, "MANIFEST_INVALID", f"upstream {repo}:{ref}: {exc}") from None
        return raw, media_type, digest

    @asynccontextmanager
    async def blob(self, repo: str, digest: str) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
        """(Content-Length, chunk iterator) of a blob; the caller hashes what it reads."""
        async with self._get(repo, f"/v2/{repo}/blobs/{digest}", {}) as resp:
            if resp.status == 404:
                raise UpstreamError(404, "BLOB_UNKNOWN", f"blob {digest} not found upstream", digest)
            yield resp.content_length, resp.content.iter_chunked(CHUNK)

    @asynccontextmanager
    async def _get(self, repo: str, path: str,
                   headers: dict[str, str]) -> AsyncIterator[aiohttp.ClientResponse]:
        scope = f"repository:{repo}:pull"
        resp = await self._follow(self.base + path, scope, headers)
        if resp.status == 401:
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.release()
            await self._authenticate(challenge, scope)
            resp = await self._follow(self.base + path, scope, headers)
            if resp.status in (401, 403):
                resp.release()
                how = "with the given credentials" if self._basic else "without credentials"
                raise UpstreamError(403, "DENIED", f"{self.registry} refused access to {repo} {how}",
                                    {"name": repo})
        try:
            if resp.status not in (200, 404):
                raise UpstreamError(502, "UNKNOWN", f"{self.registry} answered {resp.status} for {path}")
            yield resp
        finally:
            resp.release()

    async def _follow(self, url: str, scope: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET with redirects followed by hand; Authorization only goes to the upstream's own host."""
        origin = urlsplit(self.base).netloc
        for _ in range(6):
            send = dict(headers)
            if urlsplit(url).netloc == origin and scope in self._tokens:
                send["Authorization"] = self._tokens[scope]
            try:
                resp = await self._session.get(url, headers=send, allow_redirects=False)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamError(502, "UNKNOWN", f"upstream {self.registry} unreachable "
                                    f"({type(exc).__name__})", {"registry": self.registry}) from None
            if resp.status not in REDIRECTS:
                return resp
            url = urljoin(url, resp.headers.get("Location", ""))
            resp.release()
        raise UpstreamError(502, "UNKNOWN", f"too many redirects from {self.registry}")

    async def _authenticate(self, challenge: str, scope: str) -> None:
        scheme = challenge.split(" ", 1)[0].lower()
        params = dict(CHALLENGE_PARAM.findall(challenge))
        if scheme == "basic":
            if not self._basic:
                raise UpstreamError(403, "DENIED", f"{self.registry} requires credentials")
            self._tokens[scope] = self._basic
            return
        if scheme != "bearer" or "realm" not in params:
            raise UpstreamError(502, "UNKNOWN", f"{self.registry} sent an unsupported auth challenge")
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        headers = {"Authorization": self._basic} if self._basic else {}
        try:
            async with self._session.get(params["realm"], params=query, headers=headers) as resp:
                if resp.status in (401, 403):
                    why = "rejected the credentials" if self._basic else "requires credentials"
                    raise UpstreamError(403, "DENIED", f"the token server of {self.registry} {why}")
                if resp.status != 200:
                    raise UpstreamError(502, "UNKNOWN", f"token server of {self.registry} answered "
                                        f"{resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise UpstreamError(502, "UNKNOWN", f"token server of {self.registry} failed "
                                f"({type(exc).__name__})") from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise UpstreamError(502, "UNKNOWN", f"token server of {self.registry} returned no token")
        self._tokens[scope] = f"Bearer {token}"


def basic_header(username: str, password: str) -> str:
    """An `Authorization: Basic …` value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
