"""Content-addressed storage: verified blobs and manifests, committed atomically by rename.

Layout under the storage root:
    blobs/sha256/<hex>        content (manifests too, byte-exact)
    types/sha256/<hex>        media type of a manifest (written before the manifest itself)
    tmp/                      partial downloads; emptied at start-up, never served
Nothing appears under blobs/ before its digest and size were checked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class DigestMismatch(Exception):
    """Content did not hash to (or have the size of) what its descriptor said."""


class BlobWriter:
    """A temp file that hashes what is written; `verify` before the store commits it."""

    def __init__(self, tmp_dir: Path) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="blob-")
        self.path = Path(name)
        self.file = os.fdopen(fd, "r+b")
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.hash.update(chunk)
        self.size += len(chunk)

    def verify(self, digest: str, size: int | None = None) -> None:
        """Flush to disk and raise DigestMismatch unless the content is `digest` (and `size`)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        actual = "sha256:" + self.hash.hexdigest()
        if actual != digest:
            raise DigestMismatch(f"content has digest {actual}, expected {digest}")
        if size is not None and size != self.size:
            raise DigestMismatch(f"{digest} has {self.size} bytes, expected {size}")

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class Store:
    """Blobs and manifests by digest, with an in-memory manifest cache."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.type_dir = root / "types" / "sha256"
        self.tmp_dir = root / "tmp"
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # partial work of a crashed process
        for d in (self.blob_dir, self.type_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._manifests: dict[str, tuple[bytes, str]] = {}
        self._protected: Counter[str] = Counter()

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest.split(":", 1)[1]

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def writer(self) -> BlobWriter:
        return BlobWriter(self.tmp_dir)

    def commit(self, writer: BlobWriter, digest: str) -> None:
        """Move a verified temp file into place (atomic rename)."""
        writer.file.close()
        os.replace(writer.path, self.blob_path(digest))

    def put_manifest(self, digest: str, raw: bytes, media_type: str) -> None:
        """Store a verified manifest's exact bytes and media type."""
        self._atomic_write(self.type_dir / digest.split(":", 1)[1], media_type.encode())
        self._atomic_write(self.blob_path(digest), raw)
        self._manifests[digest] = (raw, media_type)

    def manifest(self, digest: str) -> tuple[bytes, str] | None:
        """(bytes, media type) of a stored manifest, from memory after the first read."""
        if digest in self._manifests:
            return self._manifests[digest]
        hexd = digest.split(":", 1)[1]
        try:
            media_type = (self.type_dir / hexd).read_text()
            raw = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            return None
        self._manifests[digest] = (raw, media_type)
        return raw, media_type

    def digests(self) -> Iterator[str]:
        for path in self.blob_dir.iterdir():
            yield "sha256:" + path.name

    def delete(self, digest: str) -> int:
        """Remove a blob (and its media type); returns the bytes freed."""
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            size = 0
        (self.type_dir / digest.split(":", 1)[1]).unlink(missing_ok=True)
        self._manifests.pop(digest, None)
        return size

    @contextmanager
    def protect(self, digests: Iterable[str]) -> Iterator[None]:
        """Keep GC away from `digests` while a staging or a fetch relies on them."""
        held = list(digests)
        self._protected.update(held)
        try:
            yield
        finally:
            self._protected.subtract(held)
            self._protected += Counter()  # drop zero counts

    def protected(self) -> set[str]:
        return set(self._protected)

    def _atomic_write(self, path: Path, data: bytes) -> None:
        writer = self.writer()
        writer.write(data)
        writer.file.flush()
        os.fsync(writer.file.fileno())
        writer.file.close()
        os.replace(writer.path, path)
