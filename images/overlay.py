"""Overlay mounts: read-only lower layers + a per-container upper dir, mounted at `<dir>/rootfs`."""

from __future__ import annotations

import os
import shutil

from garden.linux import syscalls as sc


def mount(lower_dirs: list[str], container_dir: str) -> str:
    """Mount an overlay of `lower_dirs` (top first) with upper/work in `container_dir`; returns the root."""
    upper, work, merged = (os.path.join(container_dir, d) for d in ("upper", "work", "rootfs"))
    for d in (upper, work, merged):
        os.makedirs(d, exist_ok=True)
    options = f"lowerdir={':'.join(lower_dirs)},upperdir={upper},workdir={work}"
    sc.mount("overlay", merged, "overlay", 0, options)
    return merged


def unmount(container_dir: str) -> None:
    """Unmount and delete what mount() made. Idempotent."""
    merged = os.path.join(container_dir, "rootfs")
    if os.path.ismount(merged):
        sc.umount(merged, sc.MNT_DETACH)
    shutil.rmtree(container_dir, ignore_errors=True)
