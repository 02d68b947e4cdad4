"""Root filesystems from local directories: an overlay with the directory as its only lower layer."""

from __future__ import annotations

import asyncio
import os

from garden.models import DiskStat
from images import overlay
from images.provider import ImageError, Rootfs, RootfsProvider, RootfsRequest


def _usage(path: str) -> tuple[int, int]:
    """(bytes, inodes) used below `path`, not following symlinks or crossing mounts."""
    total, inodes = 0, 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_blocks * 512
            inodes += 1
    return total, inodes


class LocalProvider(RootfsProvider):
    """Serves `rootfs` paths that are directories; "" means the daemon's default rootfs."""

    def __init__(self, store_dir: str, default_rootfs: str = ""):
        self.containers_dir = os.path.join(store_dir, "containers")
        self.default_rootfs = default_rootfs
        os.makedirs(self.containers_dir, exist_ok=True)

    def lower_dir(self, uri: str) -> str:
        path = uri or self.default_rootfs
        if path.startswith("raw://"):
            path = path[len("raw://"):]
        if not path:
            raise ImageError("no rootfs given and the daemon has no --default-rootfs")
        if not os.path.isdir(path):
            raise ImageError(f"rootfs {path}: not a directory")
        return path

    async def create(self, request: RootfsRequest) -> Rootfs:
        lower = self.lower_dir(request.uri)
        container_dir = os.path.join(self.containers_dir, request.handle)
        try:
            return Rootfs(path=overlay.mount([lower], container_dir))
        except OSError as e:
            overlay.unmount(container_dir)
            raise ImageError(f"rootfs {lower}: {e}") from e

    async def destroy(self, handle: str) -> None:
        overlay.unmount(os.path.join(self.containers_dir, handle))

    async def disk_stat(self, handle: str) -> DiskStat:
        upper = os.path.join(self.containers_dir, handle, "upper")
        used, inodes = await asyncio.to_thread(_usage, upper)
        return DiskStat(total_bytes_used=used, total_inodes_used=inodes,
                        exclusive_bytes_used=used, exclusive_inodes_used=inodes)

    def handles(self) -> list[str]:
        return sorted(os.listdir(self.containers_dir))
