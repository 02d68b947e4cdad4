"""A small busybox root filesystem built from Debian's busybox-static (for demos, tests and benchmarks)."""

from __future__ import annotations

import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"
PASSWD = """root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
tty:x:5:
users:x:100:alice
alice:x:1000:
nogroup:x:65534:
"""


def build_rootfs(path: str) -> str:
    """Create a busybox rootfs at `path` (idempotent: returns at once if it is complete)."""
    marker = os.path.join(path, ".trellis-busybox")
    if os.path.exists(marker):
        return path
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home/alice", "proc", "sys", "dev", "var"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    os.makedirs(os.path.join(tmp, "tmp"), mode=0o1777, exist_ok=True)
    os.chmod(os.path.join(tmp, "tmp"), 0o1777)
    os.chmod(os.path.join(tmp, "root"), 0o700)
    os.chown(os.path.join(tmp, "home/alice"), 1000, 1000)
    shutil.copy2(BUSYBOX, os.path.join(tmp, "bin/busybox"))
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        link = os.path.join(tmp, applet)
        if not os.path.lexists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink("/bin/busybox", link)
    for name, text in (("passwd", PASSWD), ("group", GROUP), ("hosts", ""), ("resolv.conf", "")):
        with open(os.path.join(tmp, "etc", name), "w") as f:
            f.write(text)
    open(os.path.join(tmp, ".trellis-busybox"), "w").close()
    shutil.rmtree(path, ignore_errors=True)
    os.rename(tmp, path)
    return path
