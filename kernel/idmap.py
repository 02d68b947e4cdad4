"""Garden's user-namespace id mapping and idmapped mounts (open_tree + mount_setattr, kernel ≥ 5.12).

Unprivileged containers map container root to the host's highest valid id and every other id to
itself. Image layers stay owned by host root on disk: they are given to overlayfs through idmapped
mounts made with one long-lived "mapping" user namespace, so root-owned files show as root inside.
"""

from __future__ import annotations

import os
import signal

from kernel import syscalls as sc

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


def unshare_mapped(ready_w: int, go_r: int) -> None:
    """unshare(CLONE_NEWUSER), let the parent map ids (map_when_ready), then become root in the namespace."""
    sc.unshare(sc.CLONE_NEWUSER)
    os.write(ready_w, b"u")
    os.close(ready_w)
    mapped = os.read(go_r, 1)
    os.close(go_r)
    if mapped != b"g":
        raise OSError("the user namespace's id maps could not be written")
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def map_when_ready(pid: int, ready_r: int, go_w: int) -> bool:
    """The parent's half of unshare_mapped: wait for `pid` to unshare, write Garden's maps, let it go on."""
    try:
        if os.read(ready_r, 1) == b"u":
            write_maps(pid)
            os.write(go_w, b"g")
            return True
        return False
    except OSError:
        return False  # the child sees no "g" and reports the failure
    finally:
        os.close(ready_r)
        os.close(go_w)


def prepare() -> None:
    """Create the mapping user namespace. Call once, while the process is still single-threaded."""
    global _mapping_userns
    if _mapping_userns is not None:
        return
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(go_w)
            unshare_mapped(ready_w, go_r)
            os.pause()
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        if not map_when_ready(pid, ready_r, go_w):
            raise OSError("could not create the id-mapping user namespace")
        _mapping_userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


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
