"""Disk limits for a container's writable layer: a tmpfs limited in size and inodes holding upper/ and work/.

The test machine's kernel has no CONFIG_QUOTA, so XFS/ext4 project quotas (grootfs's model) cannot be
mounted there; a limited tmpfs enforces `byte_hard`/`inode_hard` exactly and reports usage in O(1).
"""

from __future__ import annotations

import os

from kernel import syscalls as sc

MIN_BYTES = 256 << 10  # grootfs's minimum quota
OWN_INODES = 4  # the tmpfs root, upper/, work/ and overlay's work/work/


def mount_limited(path: str, byte_hard: int, inode_hard: int) -> None:
    """Mount a tmpfs at `path` holding at most `byte_hard` bytes and `inode_hard` inodes (0 = no limit)."""
    os.makedirs(path, exist_ok=True)
    options = ["mode=0755", f"size={max(byte_hard, MIN_BYTES) if byte_hard else 0}"]
    if inode_hard:
        options.append(f"nr_inodes={inode_hard + OWN_INODES}")
    sc.mount("tmpfs", path, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, ",".join(options))


def usage(path: str) -> tuple[int, int]:
    """(bytes, inodes) used on the limited tmpfs at `path`."""
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, max(st.f_files - st.f_ffree - OWN_INODES, 0)
