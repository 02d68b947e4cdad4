"""Optional pull-through for unpinned images, anonymous to one upstream, with single-flight blobs.

N concurrent requests for the same uncached blob share one upstream GET: the first starts a `Fetch`
that writes a temp file while hashing; every waiter streams from that file as it grows (all but the last
byte until the digest checked out); the blob becomes visible in the store only after that. Pulled
content is not pinned (GC may reclaim it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from registry_cache.errors import RegistryError
from registry_cache.store import DigestMismatch, Store
from registry_cache.upstream import UpstreamClient, UpstreamError


class Fetch:
    """One upstream download of one blob, readable by many while it runs."""

    def __init__(self, store: Store, client: UpstreamClient, repo: str, digest: str) -> None:
        self.store, self.digest = store, digest
        self.writer = store.writer()
        self.fd: int | None = os.dup(self.writer.file.fileno())  # readers dup this; closed when done
        self.size: int | None = None
        self.written = 0
        self.error: Exception | None = None
        self.done = False
        self.headers = asyncio.Event()
        self._progress = asyncio.Condition()
        self.task = asyncio.create_task(self._run(client, repo))

    async def _run(self, client: UpstreamClient, repo: str) -> None:
        try:
            with self.store.protect([self.digest]):
                async with client.blob(repo, self.digest) as (length, chunks):
                    self.size = length
                    self.headers.set()
                    async for chunk in chunks:
                        self.writer.write(chunk)
                        self.writer.file.flush()
                        await self._advance(len(chunk))
                await asyncio.to_thread(self.writer.verify, self.digest, self.size)
                self.store.commit(self.writer, self.digest)
        except DigestMismatch as exc:
            self.error = UpstreamError(502, "DIGEST_INVALID", f"upstream blob rejected: {exc}", self.digest)
        except Exception as exc:  # noqa: BLE001 - every failure is handed to the waiters
            self.error = exc
        finally:
            if self.error:
                self.writer.discard()
            os.close(self.fd)
            self.fd = None
            self.done = True
            self.headers.set()
            await self._advance(0)

    async def _advance(self, n: int) -> None:
        async with self._progress:
            self.written += n
            self._progress.notify_all()

    def available(self) -> int:
        """Bytes readers may send: the last byte is held back until the digest checked out, so a
        corrupted blob always reaches clients as a cut (incomplete) response, never as a whole one."""
        return self.written if self.done and not self.error else max(self.written - 1, 0)

    def reader(self) -> AsyncIterator[bytes]:
        """The blob's bytes from the start (call while the fetch runs); raises if the fetch fails."""
        assert self.fd is not None
        return self._read(os.dup(self.fd))

    async def _read(self, fd: int) -> AsyncIterator[bytes]:
        offset = 0
        try:
            while True:
                async with self._progress:
                    while self.available() <= offset and not self.done:
                        await self._progress.wait()
                if self.error:
                    raise self.error
                if offset < self.available():
                    data = os.pread(fd, min(self.available() - offset, 1 << 20), offset)
                    offset += len(data)
                    yield data
                elif self.done:
                    return
        finally:
            os.close(fd)


class PullThrough:
    """Fetches unpinned manifests and blobs from one upstream on demand."""

    def __init__(self, store: Store, registry: str, insecure: bool) -> None:
        self.store, self.registry, self.insecure = store, registry, insecure
        self.fetches: dict[str, Fetch] = {}
        self.known: dict[str, set[str]] = {}  # repo -> digests fetched for it
        self.tags: dict[tuple[str, str], str] = {}  # last digest seen upstream, served if upstream fails
        self._client: UpstreamClient | None = None
        self._manifest_flights: dict[tuple[str, str], asyncio.Future] = {}

    def client(self) -> UpstreamClient:
        if self._client is None:
            self._client = UpstreamClient(self.registry, insecure=self.insecure)
        return self._client

    async def close(self) -> None:
        if self._client:
            await self._client.close()

    def serves(self, repo: str, digest: str) -> bool:
        return digest in self.known.get(repo, set())

    async def manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """A manifest by tag or digest; concurrent identical requests share one upstream GET."""
        key = (repo, ref)
        if key not in self._manifest_flights:
            self._manifest_flights[key] = asyncio.ensure_future(self._fetch_manifest(repo, ref))
            self._manifest_flights[key].add_done_callback(lambda _: self._manifest_flights.pop(key, None))
        return await asyncio.shield(self._manifest_flights[key])

    async def _fetch_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        try:
            raw, media_type, digest = await self.client().manifest(repo, ref)
        except UpstreamError as exc:
            stale = self.tags.get((repo, ref))
            if exc.status == 404 or stale is None or (stored := self.store.manifest(stale)) is None:
                raise
            return stored[0], stored[1], stale
        self.store.put_manifest(digest, raw, media_type)
        self.known.setdefault(repo, set()).add(digest)
        if not ref.startswith("sha256:"):
            self.tags[(repo, ref)] = digest
        return raw, media_type, digest

    async def blob(self, repo: str, digest: str) -> tuple[int | None, AsyncIterator[bytes]] | None:
        """(size, bytes) from the running or a new fetch of `digest`, or None once it is in the store."""
        fetch = self.fetches.get(digest)
        if fetch is None:
            fetch = self.fetches[digest] = Fetch(self.store, self.client(), repo, digest)
            fetch.task.add_done_callback(lambda _: self._finished(repo, fetch))
        await fetch.headers.wait()
        if fetch.error:
            raise fetch.error if isinstance(fetch.error, RegistryError) else UpstreamError(
                502, "UNKNOWN", f"fetching {digest} from {self.registry} failed")
        if fetch.fd is None:
            return None
        return fetch.size, fetch.reader()

    def _finished(self, repo: str, fetch: Fetch) -> None:
        self.fetches.pop(fetch.digest, None)
        if not fetch.error:
            self.known.setdefault(repo, set()).add(fetch.digest)
