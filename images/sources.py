"""Where an image's manifests and blobs come from: a registry (docker://) or an OCI layout on disk (oci://).

Both resolve a reference to an `ImagePlan` (index → this host's platform → manifest → config) and hand
out layer blobs verified by size and sha256. Plans are cached by manifest digest, which is safe because a
digest names exact content; a tag is looked up again on every resolve (tags move).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from abc import ABC, abstractmethod

from images import manifest
from images.manifest import Descriptor, ImagePlan, Layer, ManifestError
from images.reference import DIGEST_RE, ImageRef
from images.registry import FetchError, RegistryClient


class Source(ABC):
    def __init__(self, ref: ImageRef, plans: dict[str, ImagePlan]) -> None:
        self.ref = ref
        self.plans = plans

    @abstractmethod
    async def document(self, reference: str) -> tuple[bytes, str]:
        """(exact bytes, media type hint) of a manifest or index, by tag or digest."""

    @abstractmethod
    async def blob_bytes(self, desc: Descriptor) -> bytes:
        """A small blob, verified."""

    @abstractmethod
    async def fetch(self, layer: Layer, workdir: str) -> str:
        """A local path holding the layer's verified (compressed) blob; files the caller may delete go in
        `workdir`."""

    async def _verified_document(self, reference: str) -> tuple[str, dict, str]:
        raw, hint = await self.document(reference)
        digest = manifest.sha256(raw)
        if DIGEST_RE.fullmatch(reference) and digest != reference:
            raise FetchError(f"manifest {reference} does not match its digest (got {digest})")
        media_type, doc = manifest.load(raw, hint)
        return digest, doc, media_type

    async def plan(self) -> ImagePlan:
        """Resolve the reference to the layers and config of this host's image."""
        if self.ref.is_digest and self.ref.reference in self.plans:
            return self.plans[self.ref.reference]
        top, doc, media_type = await self._verified_document(self.ref.reference)
        digest = top
        if media_type in manifest.INDEX_TYPES:
            digest = manifest.select_platform(doc).digest
            if digest not in self.plans:
                _, doc, media_type = await self._verified_document(digest)
                if media_type in manifest.INDEX_TYPES:
                    raise ManifestError("an index inside an index is not supported")
        if digest not in self.plans:
            config_desc, _ = manifest.image_blobs(doc)
            self.plans[digest] = manifest.plan(digest, doc, await self.blob_bytes(config_desc))
        self.plans[top] = self.plans[digest]
        return self.plans[digest]


class RegistrySource(Source):
    def __init__(self, ref: ImageRef, plans: dict[str, ImagePlan], client: RegistryClient) -> None:
        super().__init__(ref, plans)
        self.client = client

    async def document(self, reference: str) -> tuple[bytes, str]:
        return await self.client.manifest(self.ref.repository, reference)

    async def blob_bytes(self, desc: Descriptor) -> bytes:
        return await self.client.blob_bytes(self.ref.repository, desc)

    async def fetch(self, layer: Layer, workdir: str) -> str:
        path = os.path.join(workdir, "blob")
        await self.client.blob_to_file(self.ref.repository, layer.blob, path)
        return path


def _verify_file(path: str, desc: Descriptor) -> None:
    sha, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise FetchError(f"blob {desc.digest} is missing from the layout") from None
    if size != desc.size:
        raise FetchError(f"blob {desc.digest} has {size} bytes, expected {desc.size}")
    if "sha256:" + sha.hexdigest() != desc.digest:
        raise FetchError(f"blob {desc.digest} does not match its digest")


class LayoutSource(Source):
    """An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`)."""

    def _blob_path(self, digest: str) -> str:
        return os.path.join(self.ref.path, "blobs", "sha256", digest.split(":", 1)[1])

    def _entry(self, reference: str) -> Descriptor:
        try:
            with open(os.path.join(self.ref.path, "index.json"), "rb") as f:
                index = json.load(f)
        except FileNotFoundError:
            raise FetchError(f"{self.ref.path} is not an OCI layout (no index.json)") from None
        except ValueError:
            raise ManifestError("the layout's index.json is not JSON") from None
        entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)]
        if DIGEST_RE.fullmatch(reference):
            return Descriptor(_media_type_of(entries, reference), reference, -1)
        if not reference and len(entries) == 1:
            return Descriptor.parse(entries[0])
        for entry in entries:
            if (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name") == reference:
                return Descriptor.parse(entry)
        raise FetchError(f"tag {reference!r} not found in the layout")

    async def document(self, reference: str) -> tuple[bytes, str]:
        desc = self._entry(reference) if reference == self.ref.reference else Descriptor("", reference, -1)
        try:
            with open(self._blob_path(desc.digest), "rb") as f:
                raw = f.read(manifest.MAX_DOCUMENT + 1)
        except FileNotFoundError:
            raise FetchError(f"manifest {desc.digest} is missing from the layout") from None
        if manifest.sha256(raw) != desc.digest:
            raise FetchError(f"manifest {desc.digest} does not match its digest")
        return raw, desc.media_type

    async def blob_bytes(self, desc: Descriptor) -> bytes:
        await self.fetch_path(desc)
        with open(self._blob_path(desc.digest), "rb") as f:
            return f.read()

    async def fetch_path(self, desc: Descriptor) -> str:
        path = self._blob_path(desc.digest)
        await asyncio.to_thread(_verify_file, path, desc)
        return path

    async def fetch(self, layer: Layer, workdir: str) -> str:
        return await self.fetch_path(layer.blob)


def _media_type_of(entries: list[dict], digest: str) -> str:
    return next((str(e.get("mediaType", "")) for e in entries if e.get("digest") == digest), "")
