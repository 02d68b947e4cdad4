"""The cache's upstream registry: `images.registry.RegistryClient` (token/basic auth, token expiry, retries,
redirects without leaking Authorization) with its failures answered as OCI errors.

Manifests come back with their digest (a digest reference is verified); blobs are streamed unverified,
because the store hashes what it keeps. Credentials live only in memory; `close()` forgets them.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from images.registry import AccessDeniedError, FetchError, NotFoundError, RegistryClient, new_session
from registry_cache import mediatypes
from registry_cache.errors import RegistryError


class UpstreamError(RegistryError):
    """The upstream registry failed or refused; the message names the upstream, never a credential."""


class UpstreamClient:
    """One upstream registry, one set of (optional) credentials."""

    def __init__(self, registry: str, *, insecure: bool = False, username: str | None = None,
                 password: str | None = None, timeout: float = 30.0) -> None:
        self.registry = registry
        self._session = new_session(timeout)
        self._client = RegistryClient(self._session, registry, insecure=insecure, username=username or "",
                                      password=password or "")

    async def close(self) -> None:
        self._client.forget_credentials()
        await self._session.close()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """(exact bytes, media type, digest) of `repo:ref`; a digest ref is verified against the body."""
        not_found = UpstreamError(404, "MANIFEST_UNKNOWN", f"{self.registry}/{repo}:{ref} not found upstream",
                                  {"name": repo, "reference": ref})
        with self._answered(repo, not_found):
            raw, content_type = await self._client.manifest(repo, ref)
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
        not_found = UpstreamError(404, "BLOB_UNKNOWN", f"blob {digest} not found upstream", digest)
        with self._answered(repo, not_found):
            async with self._client.blob_stream(repo, digest) as (length, chunks):
                yield length, chunks

    @contextmanager
    def _answered(self, repo: str, not_found: UpstreamError) -> Iterator[None]:
        """The registry client's failures as the OCI errors the cache answers: 404, 403 DENIED or 502."""
        try:
            yield
        except NotFoundError:
            raise not_found from None
        except AccessDeniedError as exc:
            raise UpstreamError(403, "DENIED", str(exc), {"name": repo}) from None
        except FetchError as exc:
            raise UpstreamError(502, "UNKNOWN", str(exc), {"registry": self.registry}) from None
