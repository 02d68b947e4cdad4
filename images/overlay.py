"""Overlay mounts: read-only lower layers + a per-container `rw/upper` (and `rw/work`), mounted at `<dir>/rootfs`.

mount(2) takes the options in one page, which limits how many lower layers fit; longer stacks are
mounted with the new mount API (fsopen/fsconfig "lowerdir+" one layer at a time/fsmount/move_mount).
"""

from __future__ import annotations

import ctypes
import os
import shutil

from garden.linux import idmap
from garden.linux import syscalls as sc

PAGE = os.sysconf("SC_PAGE_SIZE")
SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
MOVE_MOUNT_F_EMPTY_PATH = 4
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(what: str, *args: object) -> int:
    result = _libc.syscall(*args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _mount_new_api(lower_dirs: list[str], upper: str, work: str, merged: str) -> None:
    fs = _syscall("fsopen overlay", SYS_FSOPEN, b"overlay", FSOPEN_CLOEXEC)
    try:
        settings = [("lowerdir+", d) for d in lower_dirs] + [("upperdir", upper), ("workdir", work)]
        for key, value in settings:
            _syscall(f"fsconfig {key}={value}", SYS_FSCONFIG, fs, FSCONFIG_SET_STRING, key.encode(),
                     os.fsencode(value), 0)
        _syscall("fsconfig create", SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0)
        mnt = _syscall("fsmount", SYS_FSMOUNT, fs, FSMOUNT_CLOEXEC, 0)
        try:
            _syscall(f"move_mount {merged}", SYS_MOVE_MOUNT, mnt, b"", -100, os.fsencode(merged),
                     MOVE_MOUNT_F_EMPTY_PATH)
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
