"""The container's filesystem, built by its pid 1 inside the new mount namespace before it execs init.

Order: pivot_root into the rootfs first (old root kept at OLD_ROOT), so every destination path is
resolved inside the container root (a symlink in the image cannot point a mount at the host), then
mount /proc, /sys, /dev, /tmp, the init binary, /etc/hosts, /etc/resolv.conf and the bind mounts,
taking their sources from OLD_ROOT, and finally detach the old root.
"""

from __future__ import annotations

import os

from garden.linux import syscalls as sc

OLD_ROOT = "/.trellis-oldroot"
INIT_PATH = "/tmp/garden-init"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {
    "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
}
MASKED_PATHS = (
    "/proc/kcore", "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/proc/keys", "/sys/firmware",
)
READONLY_PATHS = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/asound")
SAFE_FLAGS = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


def _ensure(path: str, like_dir: bool, mode: int = 0o755) -> None:
    """Create a mount point inside the (already pivoted) root: a directory or an empty file."""
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path) or "/", mode=0o755, exist_ok=True)
    if like_dir:
        os.mkdir(path, mode)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _bind(source: str, target: str, readonly: bool, extra: int = 0) -> None:
    _ensure(target, os.path.isdir(source))
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
    if readonly or extra:
        flags = sc.MS_BIND | sc.MS_REMOUNT | extra | (sc.MS_RDONLY if readonly else 0)
        # A remount must keep the locked flags of the source mount (inside a user namespace).
        st = os.statvfs(target)
        for bit, mflag in ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV), (os.ST_NOEXEC, sc.MS_NOEXEC)):
            if st.f_flag & bit:
                flags |= mflag
        sc.mount(None, target, None, flags)


def pivot(rootfs: str) -> None:
    """Make `rootfs` the root of this mount namespace, keeping the old root at OLD_ROOT."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    os.makedirs(rootfs + OLD_ROOT, mode=0o700, exist_ok=True)
    sc.pivot_root(rootfs, rootfs + OLD_ROOT)
    os.chdir("/")


def _mount_dev(privileged: bool) -> None:
    _ensure("/dev", True)
    sc.mount("tmpfs", "/dev", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    for name in DEVICES + (("fuse",) if privileged and os.path.exists(OLD_ROOT + "/dev/fuse") else ()):
        _bind(OLD_ROOT + "/dev/" + name, "/dev/" + name, readonly=False)
    os.mkdir("/dev/pts", 0o755)
    sc.mount("devpts", "/dev/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir("/dev/shm", 0o1777)
    sc.mount("shm", "/dev/shm", "tmpfs", SAFE_FLAGS, "mode=1777,size=65536k")
    os.chmod("/dev/shm", 0o1777)
    os.mkdir("/dev/mqueue", 0o755)
    sc.mount("mqueue", "/dev/mqueue", "mqueue", SAFE_FLAGS)
    for name, target in DEV_LINKS.items():
        os.symlink(target, "/dev/" + name)


def _mask(privileged: bool) -> None:
    """Unprivileged: hide host information under /proc and /sys, make kernel knobs read-only."""
    if privileged:
        return
    for path in MASKED_PATHS:
        if not os.path.lexists(path):
            continue
        if os.path.isdir(path):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, "size=0")
        else:
            sc.mount("/dev/null", path, None, sc.MS_BIND)
    for path in READONLY_PATHS:
        if os.path.exists(path):
            _bind(path, path, readonly=True)


def build(cfg: dict) -> None:
    """Everything between unshare and exec of init, run as pid 1 of the new pid namespace."""
    privileged = cfg["privileged"]
    pivot(cfg["rootfs"])
    _ensure("/proc", True)
    sc.mount("proc", "/proc", "proc", SAFE_FLAGS)
    _ensure("/sys", True)
    sc.mount("sysfs", "/sys", "sysfs", SAFE_FLAGS | (0 if privileged else sc.MS_RDONLY))
    _mount_dev(privileged)
    _ensure("/tmp", True, 0o1777)
    sc.mount("tmpfs", "/tmp", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=1777")
    _bind(OLD_ROOT + cfg["init"], INIT_PATH, readonly=True)
    for name in ("hosts", "resolv.conf"):
        _bind(OLD_ROOT + cfg["etc_dir"] + "/" + name, "/etc/" + name, readonly=False)
    for m in cfg["bind_mounts"]:
        source = m["src"] if m["from_container"] else OLD_ROOT + m["src"]
        if not os.path.exists(source):
            raise FileNotFoundError(f"bind mount source {m['src']} does not exist")
        _bind(source, m["dst"], readonly=m["ro"])
    _mask(privileged)
    sc.umount(OLD_ROOT, sc.MNT_DETACH)
    os.rmdir(OLD_ROOT)
