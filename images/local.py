"""Root filesystems from local directories and rootfs tarballs, as overlays with a per-container upper dir.

A directory is used as the single lower layer as it is. A tarball (plain, gzip or zstd) is unpacked once,
safely, into the layer store, keyed by the sha256 of its bytes. Disk limits put the upper dir on a limited
tmpfs (`images.limits`). Unused layers are collected when the store grows beyond `gc_threshold` bytes.
Store layout: `layers/<key>/{diff,meta.json}`, `tmp/`, `containers/<handle>/{image.json,rw,rootfs}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field

from images import limits, overlay
from images.diskusage import usage
from images.layers import LayerStore
from images.manifest import ManifestError
from images.provider import (
    DISK_SCOPE_EXCLUSIVE,
    DiskStat,
    ImageConfig,
    ImageError,
    Rootfs,
    RootfsProvider,
    RootfsRequest,
)
from images.reference import DOCKER_HUB, ImageRef, parse
from images.registry import FetchError
from images.unpack import UnpackError, sniff, unpack
from kernel import idmap

log = logging.getLogger("trellis.images")
HANDLE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")


@dataclass
class Image:
    """What a container's root is made of: layer keys (bottom first) or a plain directory."""

    layer_keys: list[str] = field(default_factory=list)
    directory: str = ""
    config: ImageConfig = field(default_factory=ImageConfig)
    base_bytes: int = 0
    base_inodes: int = 0


def _hash_file(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


class LocalProvider(RootfsProvider):
    """Serves directories and tarballs (plain paths or raw://path); "" means the daemon's default rootfs."""

    def __init__(self, store_dir: str, default_rootfs: str = "", *, gc_threshold: int = 0,
                 enforce_disk_limits: bool = True, default_registry: str = DOCKER_HUB) -> None:
        self.containers_dir = os.path.join(store_dir, "containers")
        os.makedirs(self.containers_dir, exist_ok=True)
        self.layers = LayerStore(store_dir)
        self.default_rootfs = default_rootfs
        self.default_registry = default_registry
        self.gc_threshold = gc_threshold
        self.enforce_disk_limits = enforce_disk_limits
        self.devices = os.geteuid() == 0  # device nodes only when we may create them
        self._records: dict[str, dict] = {}
        for handle in os.listdir(self.containers_dir):
            try:
                with open(os.path.join(self.containers_dir, handle, "image.json")) as f:
                    self._records[handle] = json.load(f)
            except (OSError, ValueError):
                self._records[handle] = {"layers": []}
        self._tarballs: dict[tuple[int, int, int, int], str] = {}
        self._creating = 0

    # -- resolving a reference to layers ---------------------------------------------------------------

    async def resolve(self, ref: ImageRef, request: RootfsRequest) -> Image:
        """Layers (made if missing) and config for `ref`. Subclasses add schemes and call this for "local"."""
        if ref.kind != "local":
            raise ImageError(f"image {ref}: {ref.kind}:// references need the registry provider")
        if os.path.isdir(ref.path):
            return Image(directory=ref.path)
        if not os.path.isfile(ref.path):
            raise ImageError(f"rootfs {ref.path}: not a directory or a tarball")
        st = os.stat(ref.path)
        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if ident not in self._tarballs:
            self._tarballs[ident] = await asyncio.to_thread(_hash_file, ref.path)
        key = self._tarballs[ident]

        async def produce(diff: str) -> None:
            compression = await asyncio.to_thread(sniff, ref.path)
            await asyncio.to_thread(unpack, ref.path, compression, diff, self.devices)

        info = await self.layers.ensure(key, produce)
        return Image(layer_keys=[key], base_bytes=info.bytes, base_inodes=info.inodes)

    # -- RootfsProvider --------------------------------------------------------------------------------

    async def create(self, request: RootfsRequest) -> Rootfs:
        if not HANDLE_RE.fullmatch(request.handle):
            raise ImageError(f"invalid handle {request.handle!r} for a rootfs")
        container_dir = os.path.join(self.containers_dir, request.handle)
        if request.handle in self._records or os.path.lexists(container_dir):
            raise ImageError(f"a rootfs for {request.handle} already exists")
        uri = request.uri or self.default_rootfs
        if not uri:
            raise ImageError("no rootfs given and the daemon has no --default-rootfs")
        self._records[request.handle] = {"layers": []}  # reserves the handle; GC keeps what it lists
        self._creating += 1
        try:
            if self._creating == 1:
                await self.collect_garbage()
            ref = parse(uri, self.default_registry)
            try:
                image = await self.resolve(ref, request)
            except (FetchError, ManifestError, UnpackError, OSError) as e:
                raise ImageError(f"image {ref}: {e}") from None
            self._records[request.handle] = record = {
                "layers": image.layer_keys, "base_bytes": image.base_bytes, "base_inodes": image.base_inodes}
            return Rootfs(path=self._mount(request, container_dir, image, record), config=image.config)
        except BaseException:
            self._records.pop(request.handle, None)
            overlay.unmount(container_dir)
            raise
        finally:
            self._creating -= 1

    def _mount(self, request: RootfsRequest, container_dir: str, image: Image, record: dict) -> str:
        lowers = [image.directory] if image.directory else [self.layers.diff_dir(k) for k in reversed(image.layer_keys)]
        limit = request.disk_limits
        byte_hard, inode_hard = limit.byte_hard, limit.inode_hard
        if limit.scope != DISK_SCOPE_EXCLUSIVE:
            byte_hard = byte_hard and byte_hard - image.base_bytes
            inode_hard = inode_hard and inode_hard - image.base_inodes
            if byte_hard < 0 or inode_hard < 0:
                raise ImageError(f"image {request.uri or self.default_rootfs}: disk limit is smaller than the "
                                 f"image ({image.base_bytes} bytes, {image.base_inodes} inodes)")
        try:
            os.mkdir(container_dir, 0o700)
            record["limited"] = bool(self.enforce_disk_limits and (byte_hard or inode_hard))
            if record["limited"]:
                limits.mount_limited(os.path.join(container_dir, "rw"), byte_hard, inode_hard)
            with open(os.path.join(container_dir, "image.json"), "w") as f:
                json.dump(record, f)
            return overlay.mount(lowers, container_dir, None if request.privileged else idmap.mapping_userns())
        except OSError as e:
            raise ImageError(f"image {request.uri or self.default_rootfs}: cannot mount the rootfs: {e}") from None

    async def destroy(self, handle: str) -> None:
        if not HANDLE_RE.fullmatch(handle):
            return
        await asyncio.to_thread(overlay.unmount, os.path.join(self.containers_dir, handle))
        self._records.pop(handle, None)

    async def disk_stat(self, handle: str) -> DiskStat:
        record = self._records.get(handle)
        if record is None:
            raise ImageError(f"no rootfs for {handle}")
        rw = os.path.join(self.containers_dir, handle, "rw")
        used, inodes = limits.usage(rw) if record.get("limited") else await asyncio.to_thread(usage, f"{rw}/upper")
        return DiskStat(total_bytes_used=used + record.get("base_bytes", 0),
                        total_inodes_used=inodes + record.get("base_inodes", 0),
                        exclusive_bytes_used=used, exclusive_inodes_used=inodes)

    def handles(self) -> list[str]:
        return sorted(os.listdir(self.containers_dir))

    def capacity_bytes(self) -> int:
        st = os.statvfs(self.containers_dir)
        return st.f_blocks * st.f_frsize

    # -- garbage collection ----------------------------------------------------------------------------

    async def collect_garbage(self, threshold: int | None = None) -> list[str]:
        """Remove layers no container uses, least recently used first, while the layers take more than
        `threshold` bytes (default: the provider's gc_threshold; 0 disables). Returns the removed keys."""
        threshold = self.gc_threshold if threshold is None else threshold
        total = self.layers.total_bytes()
        if threshold <= 0 or total <= threshold:
            return []
        used = {k for record in self._records.values() for k in record.get("layers", [])} | self.layers.busy()
        removed = []
        for info in sorted(self.layers.layers.values(), key=lambda i: i.last_used):
            if total <= threshold:
                break
            if info.key not in used:
                total -= info.bytes
                removed.append(info.key)
        await self.layers.remove(removed)
        if removed:
            log.info("image GC removed %d layers, %d bytes of layers left", len(removed), total)
        return removed
