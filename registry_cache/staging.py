"""Staging: resolve an upstream reference once, copy the whole image, verify every digest, pin it.

Credentials are only passed to the UpstreamClient for the duration of one `stage` call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from registry_cache import mediatypes
from registry_cache.errors import RegistryError
from registry_cache.pins import Pin, PinStore
from registry_cache.reference import parse_image_ref
from registry_cache.store import BlobWriter, DigestMismatch, Store
from registry_cache.upstream import UpstreamClient, UpstreamError

Progress = Callable[[dict], None]


def _ignore(_: dict) -> None:
    return None


class Stager:
    """Copies images from upstream registries into the store and pins them."""

    def __init__(self, store: Store, pins: PinStore, insecure: set[str], concurrency: int = 4) -> None:
        self.store, self.pins, self.insecure = store, pins, insecure
        self.concurrency = concurrency
        self.commit_lock = asyncio.Lock()  # shared with GC

    async def stage(self, ref: str, username: str | None = None, password: str | None = None,
                    staged_by: str = "", progress: Progress = _ignore) -> Pin:
        """Copy `ref` and pin it; on any failure nothing new becomes visible in the store."""
        try:
            image = parse_image_ref(ref)
        except ValueError as exc:
            raise RegistryError(400, "NAME_INVALID", str(exc), {"ref": ref}) from None
        client = UpstreamClient(image.registry, insecure=image.registry in self.insecure,
                                username=username, password=password)
        writers: dict[str, BlobWriter] = {}
        try:
            raw, media_type, digest = await client.manifest(image.repository, image.reference)
            progress({"event": "resolved", "ref": str(image), "digest": digest, "mediaType": media_type})
            manifests, blobs = await self._walk(client, image.repository, raw, media_type, digest)
            with self.store.protect([*manifests, *blobs]):
                missing = {d: s for d, s in blobs.items() if not self.store.has_blob(d)}
                progress({"event": "blobs", "total": len(blobs), "missing": len(missing),
                          "bytes": sum(missing.values())})
                await self._download(client, image.repository, missing, writers, progress)
                async with self.commit_lock:
                    for blob_digest, writer in writers.items():
                        self.store.commit(writer, blob_digest)
                    for manifest_digest, (body, mtype) in manifests.items():
                        self.store.put_manifest(manifest_digest, body, mtype)
                    pin = Pin(name=image.repository, digest=digest, media_type=media_type, source=str(image),
                              staged_by=staged_by, staged_at=time.time(), tag=image.tag,
                              manifests=list(manifests), blobs=list(blobs))
                    self.pins.add(pin)
        finally:
            for writer in writers.values():
                writer.discard()
            await client.close()
        progress({"event": "pinned", "name": pin.name, "digest": pin.digest})
        return pin

    async def _walk(self, client: UpstreamClient, repo: str, raw: bytes, media_type: str,
                    digest: str) -> tuple[dict[str, tuple[bytes, str]], dict[str, int]]:
        """All manifests (digest -> bytes, type) and blobs (digest -> size) under the top document."""
        manifests: dict[str, tuple[bytes, str]] = {}
        blobs: dict[str, int] = {}
        todo = [(raw, media_type, digest)]
        while todo:
            body, mtype, mdigest = todo.pop()
            manifests[mdigest] = (body, mtype)
            _, doc = mediatypes.parse(body, mtype)
            for child in mediatypes.children(mtype, doc):
                if child["digest"] not in manifests:
                    child_raw, child_type, _ = await client.manifest(repo, child["digest"])
                    if len(child_raw) != child.get("size", len(child_raw)):
                        raise UpstreamError(502, "SIZE_INVALID", "manifest has the wrong size",
                                            child["digest"])
                    todo.append((child_raw, child_type, child["digest"]))
            for desc in mediatypes.blob_descriptors(mtype, doc):
                blobs[desc["digest"]] = int(desc["size"])
        return manifests, blobs

    async def _download(self, client: UpstreamClient, repo: str, missing: dict[str, int],
                        writers: dict[str, BlobWriter], progress: Progress) -> None:
        gate = asyncio.Semaphore(self.concurrency)

        async def fetch(digest: str, size: int) -> None:
            async with gate:
                writer = writers[digest] = self.store.writer()
                async with client.blob(repo, digest) as (_, chunks):
                    async for chunk in chunks:
                        writer.write(chunk)
                try:
                    await asyncio.to_thread(writer.verify, digest, size)
                except DigestMismatch as exc:
                    raise UpstreamError(502, "DIGEST_INVALID", f"upstream blob rejected: {exc}",
                                        digest) from None
                progress({"event": "blob", "digest": digest, "size": size})

        tasks = [asyncio.create_task(fetch(d, s)) for d, s in missing.items()]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
