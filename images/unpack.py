"""Safe layer unpacking into a directory that can be used as an overlay lower layer.

Every name is resolved component by component from the layer root with O_NOFOLLOW (openat-style), so no
entry can write through a symlink or escape the layer: absolute names, `..` components and hard links to
such names are rejected. OCI whiteouts become overlay whiteouts (`.wh.NAME` → char device 0/0 at NAME,
`.wh..wh..opq` → xattr trusted.overlay.opaque=y on the directory). Device nodes are created only when
`devices` is true. The uncompressed stream is hashed so the caller can check the layer's diff_id.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from typing import BinaryIO

import zstandard

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


class UnpackError(Exception):
    """The layer is corrupt or unsafe; the message names the offending entry."""


class _HashingReader:
    """Reads a stream while hashing (and counting) what went through."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.sha.hexdigest()


def sniff(path: str) -> str:
    """Compression of a file from its magic bytes: "gzip", "zstd" or "none"."""
    with open(path, "rb") as f:
        head = f.read(4)
    return "gzip" if head.startswith(GZIP_MAGIC) else "zstd" if head == ZSTD_MAGIC else "none"


def _open(path: str, compression: str) -> BinaryIO:
    raw = open(path, "rb")
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
    return raw


def _parts(name: str) -> list[str]:
    if name.startswith("/"):
        raise UnpackError(f"entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"entry {name!r} escapes the layer directory")
    return parts


class _Tree:
    """Directory fds below the layer root, opened without following symlinks (last parent cached)."""

    def __init__(self, root: str) -> None:
        self.root = os.open(root, OPEN_DIR)
        self.cached: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self.forget()
        os.close(self.root)

    def forget(self) -> None:
        if self.cached:
            os.close(self.cached[1])
            self.cached = None

    def parent(self, parts: list[str], name: str, create: bool = True) -> int:
        """An fd of the directory holding `parts[-1]` (owned by the cache; do not close)."""
        key = tuple(parts[:-1])
        if self.cached and self.cached[0] == key:
            return self.cached[1]
        self.forget()
        fd = os.dup(self.root)
        try:
            for part in key:
                try:
                    nfd = os.open(part, OPEN_DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise UnpackError(f"entry {name!r}: {part!r} does not exist") from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nfd = os.open(part, OPEN_DIR, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ENOTDIR, errno.ELOOP):
                        raise UnpackError(f"entry {name!r} goes through {part!r}, which is not a directory") from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        self.cached = (key, fd)
        return fd


def _remove(parent: int, leaf: str, keep_dir: bool) -> bool:
    """Remove `leaf` if present (a directory only if not `keep_dir`); True if a directory was kept."""
    try:
        st = os.lstat(leaf, dir_fd=parent)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return True
        shutil.rmtree(leaf, dir_fd=parent)
    else:
        os.unlink(leaf, dir_fd=parent)
    return False


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    """PAX `SCHILY.xattr.*` attributes, minus the trusted.* namespace (a layer must not forge overlay ones)."""
    out = {}
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted."):
            out[key[len("SCHILY.xattr."):]] = value.encode("utf-8", "surrogateescape")
    return out


def _metadata(member: tarfile.TarInfo, leaf: str, parent: int) -> None:
    os.chown(leaf, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
    if not member.issym():
        os.chmod(leaf, member.mode & 0o7777, dir_fd=parent)
        for key, value in _xattrs(member).items():
            fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_PATH, dir_fd=parent)
            try:
                os.setxattr(f"/proc/self/fd/{fd}", key, value)
            except OSError:
                pass  # xattrs are best effort (ENOTSUP on some filesystems, EPERM for security.*)
            finally:
                os.close(fd)
    os.utime(leaf, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, leaf: str, parent: int) -> None:
    fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
    with open(fd, "wb") as out:
        src = tar.extractfile(member)
        if src is not None:
            shutil.copyfileobj(src, out, 1 << 20)


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo, tree: _Tree, devices: bool,
           dirs: list[tuple[list[str], int]]) -> None:
    parts = _parts(member.name)
    if not parts:
        return  # the layer root itself
    leaf = parts[-1]
    parent = tree.parent(parts, member.name)
    if leaf == OPAQUE:
        os.setxattr(parent, "trusted.overlay.opaque", b"y")
        return
    if leaf.startswith(WHITEOUT):
        target = leaf[len(WHITEOUT):]
        if not target or target in (".", ".."):
            raise UnpackError(f"entry {member.name!r} is an invalid whiteout")
        _remove(parent, target, keep_dir=False)
        os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
        return
    if member.isdir():
        if not _remove(parent, leaf, keep_dir=True):
            os.mkdir(leaf, 0o700, dir_fd=parent)
        _metadata(member, leaf, parent)
        dirs.append((parts, member.mtime))
        return
    _remove(parent, leaf, keep_dir=False)
    if member.isreg():
        _write_file(tar, member, leaf, parent)
    elif member.issym():
        os.symlink(member.linkname, leaf, dir_fd=parent)
    elif member.islnk():
        target = _parts(member.linkname)
        if not target:
            raise UnpackError(f"hard link {member.name!r} points at the layer root")
        tree.forget()
        src_parent = tree.parent(target, member.linkname, create=False)
        src_fd = os.dup(src_parent)
        try:
            os.link(target[-1], leaf, src_dir_fd=src_fd, dst_dir_fd=tree.parent(parts, member.name),
                    follow_symlinks=False)
        except FileNotFoundError:
            raise UnpackError(f"hard link {member.name!r} points at {member.linkname!r}, not in this layer") from None
        finally:
            os.close(src_fd)
        return  # a hard link shares its target's metadata
    elif member.ischr() or member.isblk():
        if not devices:
            return
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(leaf, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
    elif member.isfifo():
        os.mkfifo(leaf, 0o600, dir_fd=parent)
    else:
        raise UnpackError(f"entry {member.name!r} has unsupported type {member.type!r}")
    _metadata(member, leaf, parent)


def unpack(path: str, compression: str, dest: str, devices: bool = True) -> str:
    """Unpack the (compressed) layer tar at `path` into the existing, empty directory `dest`.
    Returns the sha256 digest of the uncompressed tar (the diff_id). Raises UnpackError."""
    tree = _Tree(dest)
    dirs: list[tuple[list[str], int]] = []
    try:
        with _open(path, compression) as raw:
            reader = _HashingReader(raw)
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    _entry(tar, member, tree, devices, dirs)
            diff_id = reader.drain()
        for parts, mtime in reversed(dirs):  # directory mtimes last: their contents changed them
            parent = tree.parent(parts, "/".join(parts))
            os.utime(parts[-1], (mtime, mtime), dir_fd=parent, follow_symlinks=False)
        return diff_id
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zstandard.ZstdError) as e:
        raise UnpackError(f"layer is not a valid tar ({type(e).__name__}: {e})") from None
    except OSError as e:
        if e.errno == errno.EEXIST:
            raise UnpackError(f"layer has a duplicate entry ({e})") from None
        raise UnpackError(f"cannot unpack layer: {e}") from None
    finally:
        tree.close()
