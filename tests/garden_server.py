"""Helpers for tests that look at what a container left in the kernel."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def mounts_under(path: str) -> list[str]:
    """Mount points at or below `path` in the host's mount table."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path.rstrip("/") + "/")]


def cgroup_dirs(handle: str) -> list[str]:
    """Container cgroup directories for `handle` in any hierarchy (below any trellis* parent)."""
    found = []
    for root, dirs, _files in os.walk("/sys/fs/cgroup"):
        if os.path.basename(root).startswith("trellis") and handle in dirs:
            found.append(os.path.join(root, handle))
        if root.count("/") > 8:
            dirs.clear()
    return found


def tar_of(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar holding regular files `name → content` (for StreamIn)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return data.getvalue()
