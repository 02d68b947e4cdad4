"""Garden's user-namespace id mapping and idmapped mounts (open_tree + mount_setattr, kernel ≥ 5.12).

Unprivileged containers map container root to the host's highest valid id and every other id to
itself. Image layers stay owned by host root on disk: they are given to overlayfs through idmapped
mounts made with one long-lived "mapping" user namespace, so root-owned files show as root inside.
"""

from __future__ import annotations

import os

from garden.linux import syscalls as sc

ROOT_HOST_ID = 4294967294  # "maximus": the highest valid uid/gid, container root on the host
ID_MAP = f"0 {ROOT_HOST_ID} 1\n1 1 {ROOT_HOST_ID - 1}\n"

_mapping_userns: int | None = None


def host_id(container_id: int) -> int:
    """The host uid/gid that a container uid/gid maps to."""
    return ROOT_HOST_ID if container_id == 0 else container_id


def write_maps(pid: int) -> None:
    """Give `pid`'s fresh user namespace Garden's uid and gid maps (setgroups allowed)."""
    for name, value in (("setgroups", "allow"), ("uid_map", ID_MAP), ("gid_map", ID_MAP)):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(value)


def prepare() -> None:
    """Create the mapping user namespace. Call once, while the process is still single-threaded."""
    global _mapping_userns
    if _mapping_userns is not None:
        return
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(done_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    try:
        os.close(ready_w)
        if os.read(ready_r, 1) != b"u":
            raise OSError("could not create the id-mapping user namespace")
        write_maps(pid)
        _mapping_userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(done_w)
        os.waitpid(pid, 0)
        for fd in (ready_r, done_r):
            os.close(fd)


def mapping_userns() -> int | None:
    """The mapping user namespace's fd, or None when prepare() was not called (no id mapping)."""
    return _mapping_userns


def idmapped_clone(path: str, userns_fd: int) -> int:
    """A detached, recursive copy of the mount tree at `path` showing ids through `userns_fd`'s maps.

    Use it as a path with f"/proc/self/fd/{fd}" (an overlay lower layer, for example), then close it.
    """
    fd = sc.open_tree_clone(path)
    try:
        sc.mount_setattr(fd, sc.MOUNT_ATTR_IDMAP, userns_fd)
    except BaseException:
        os.close(fd)
        raise
    return fd
