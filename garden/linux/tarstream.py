"""StreamIn / StreamOut: tar extraction and archiving inside a container, as the requested user.

Runs in a helper child that has entered the container's mount (and user) namespace, so `/` is the
container root and nothing it writes can land outside it. Entries with absolute names or `..` are
refused outright with a clear error.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import socket
import tarfile

from garden.linux import channel, spawn, users
from kernel import syscalls as sc

MOUNT_NS = (("mnt", sc.CLONE_NEWNS),)
XATTR_PREFIX = "SCHILY.xattr."
UMASK = 0o022


class UnsafeEntryError(ValueError):
    pass


def _become(user: users.User) -> None:
    os.setgroups(user.groups)
    os.setgid(user.gid)
    os.setuid(user.uid)


def _enter_as(cfg: dict) -> users.User:
    spawn.join_userns(spawn.enter(cfg["init_pid"], cfg["userns"], MOUNT_NS))
    user = users.resolve(cfg["user"] or "root")
    os.chdir(user.home if os.path.isdir(user.home) else "/")
    return user


def safe_name(name: str) -> str:
    """The entry's path relative to the destination; raises UnsafeEntryError if it would escape."""
    if name.startswith("/"):
        raise UnsafeEntryError(f"tar entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeEntryError(f"tar entry {name!r} escapes the destination")
    return "/".join(parts)


def _replace(path: str) -> None:
    if os.path.lexists(path) and not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: str) -> None:
    rel = safe_name(member.name)
    target = os.path.join(dest, rel) if rel else dest
    mode = member.mode & ~UMASK & 0o7777
    if member.isdir():
        os.makedirs(target, exist_ok=True)
        os.chmod(target, mode | 0o700)
    elif member.isreg():
        _replace(target)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)
        os.chmod(target, mode)
    elif member.issym():
        _replace(target)
        os.symlink(member.linkname, target)
    elif member.islnk():
        _replace(target)
        os.link(os.path.join(dest, safe_name(member.linkname)), target, follow_symlinks=False)
    elif member.isfifo():
        _replace(target)
        os.mkfifo(target, mode)
    elif member.ischr() or member.isblk():
        _replace(target)
        kind = 0o020000 if member.ischr() else 0o060000
        os.mknod(target, mode | kind, os.makedev(member.devmajor, member.devminor))
    else:
        return
    for key, value in member.pax_headers.items():
        if key.startswith(XATTR_PREFIX):
            os.setxattr(target, key[len(XATTR_PREFIX):], value.encode("utf-8", "surrogateescape"),
                        follow_symlinks=False)
    if not member.issym():
        os.utime(target, (member.mtime, member.mtime))


def stream_in(cfg: dict, fds: list[int]) -> int:
    """Extract the tar arriving on fds[1] at cfg["destination"] (relative to the user's home)."""
    status = socket.socket(fileno=fds[0])
    try:
        user = _enter_as(cfg)
        dest = posixpath.normpath(os.path.join(os.getcwd(), cfg["destination"] or "."))
        spawn.make_dir_for(dest, user)
        _become(user)
        os.umask(UMASK)
        with os.fdopen(fds[1], "rb") as body, tarfile.open(fileobj=body, mode="r|") as tar:
            for member in tar:
                _extract_member(tar, member, dest)
        channel.send(status, {"ok": True})
        return 0
    except Exception as e:
        channel.send(status, {"error": f"{type(e).__name__}: {e}" if not isinstance(e, OSError) else str(e)})
        return 1


def stream_out(cfg: dict, fds: list[int]) -> int:
    """Write a tar of cfg["source"] to fds[1]: a directory's contents when source ends in "/"."""
    status = socket.socket(fileno=fds[0])
    try:
        user = _enter_as(cfg)
        _become(user)
        source = cfg["source"] or "."
        os.lstat(source)
    except Exception as e:
        channel.send(status, {"error": str(e)})
        return 1
    channel.send(status, {"ok": True})
    try:
        with os.fdopen(fds[1], "wb", buffering=1 << 20) as out, \
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            if source.endswith("/"):
                tar.add(source, arcname=".")
            else:
                tar.add(source, arcname=os.path.basename(source.rstrip("/")) or ".")
        channel.send(status, {"done": True})
        return 0
    except Exception as e:
        channel.send(status, {"error": str(e)})
        return 1
