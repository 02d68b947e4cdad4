"""Disk usage of a directory tree, the way `du` counts it (allocated blocks, inodes)."""

from __future__ import annotations

import os
import stat


def usage(path: str) -> tuple[int, int]:
    """(bytes, inodes) used below `path`, not following symlinks; hard links counted once."""
    total, inodes, seen = 0, 0, set()
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
            inodes += 1
    return total, inodes
