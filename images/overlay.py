"""Overlay mounts: read-only lower layers + a per-container `rw/upper` (and `rw/work`), mounted at `<dir>/rootfs`.

mount(2) takes the options in one page, which limits how many lower layers fit; longer stacks are
mounted with the new mount API (fsopen/fsconfig "lowerdir+" one layer at a time/fsmount/move_mount).
"""

from __future__ import annotations

import os
import shutil

from kernel import idmap
from kernel import syscalls as sc

PAGE = os.sysconf("SC_PAGE_SIZE")


def _mount_new_api(lower_dirs: list[str], upper: str, work: str, merged: str) -> None:
    fs = sc.fsopen("overlay")
    try:
        for d in lower_dirs:
            sc.fsconfig_string(fs, "lowerdir+", d)
        sc.fsconfig_string(fs, "upperdir", upper)
        sc.fsconfig_string(fs, "workdir", work)
        sc.fsconfig_create(fs)
        mnt = sc.fsmount(fs)
        try:
            sc.move_mount(mnt, merged)
        finally:
            os.close(mnt)
    finally:
        os.close(fs)


def mount(lower_dirs: list[str], container_dir: str, userns_fd: int | None = None) -> str:
    """Mount an overlay of `lower_dirs` (top first) with upper/work in `container_dir`; returns the root.

    With `userns_fd` (a user namespace with Garden's id map) the layers are used through idmapped mounts
    and the upper dir belongs to the mapped root, so the root shows root-owned files as root inside.
    """
    upper, work, merged = (os.path.join(container_dir, d) for d in ("rw/upper", "rw/work", "rootfs"))
    for d in (upper, work, merged):
        os.makedirs(d, exist_ok=True)
    if userns_fd is None:
        _mount(lower_dirs, upper, work, merged)
        return merged
    os.chown(upper, idmap.ROOT_HOST_ID, idmap.ROOT_HOST_ID)
    fds: list[int] = []
    try:
        for d in lower_dirs:
            fds.append(idmap.idmapped_clone(d, userns_fd))
        _mount([f"/proc/self/fd/{fd}" for fd in fds], upper, work, merged)
    finally:
        for fd in fds:
            os.close(fd)
    return merged


def _mount(lower_dirs: list[str], upper: str, work: str, merged: str) -> None:
    options = f"lowerdir={':'.join(lower_dirs)},upperdir={upper},workdir={work}"
    if len(options) < PAGE:
        sc.mount("overlay", merged, "overlay", 0, options)
    else:
        _mount_new_api(lower_dirs, upper, work, merged)


def unmount(container_dir: str) -> None:
    """Unmount and delete what mount() made. Idempotent."""
    for mounted in ("rootfs", "rw"):
        path = os.path.join(container_dir, mounted)
        if os.path.ismount(path):
            sc.umount(path, sc.MNT_DETACH)
    shutil.rmtree(container_dir, ignore_errors=True)
