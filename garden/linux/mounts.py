"""The container's filesystem, built by its pid 1 inside the new mount namespace before it execs init.

Host-side sources (device nodes, the init binary, /etc/hosts, /etc/resolv.conf, bind mounts) are
cloned as detached mounts by the launcher before it leaves the host's namespaces (`open_sources`):
in a user namespace, container root could not even walk to them. pid 1 then pivots into the rootfs
(its working directory since before the unshare), mounts /proc and /sys and detaches the old root, so
every destination is resolved inside the container (an image symlink cannot point a mount at the
host), and attaches the sources there.
"""

from __future__ import annotations

import os
import stat

from kernel import syscalls as sc

# The old root stays until proc and sysfs are mounted: a user namespace may only mount them where a
# fully visible instance exists.
CGROUP_ROOT = "/sys/fs/cgroup"
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
    try:
        os.makedirs(os.path.dirname(path) or "/", mode=0o755, exist_ok=True)
    except FileExistsError:  # a dangling symlink (to a host path, say) or a file on the way
        raise NotADirectoryError(f"cannot make mount point {path}: a parent is not a directory in the "
                                 "container") from None
    if like_dir:
        os.mkdir(path, mode)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _bind(source: str, target: str, readonly: bool) -> None:
    """Bind a path of the container onto another (read-only keeping the locked flags of the source)."""
    _ensure(target, os.path.isdir(source))
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
    if readonly:
        flags = sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY
        st = os.statvfs(target)
        for bit, mflag in ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV), (os.ST_NOEXEC, sc.MS_NOEXEC)):
            if st.f_flag & bit:
                flags |= mflag
        sc.mount(None, target, None, flags)


def _attach(fd: int, target: str) -> None:
    """Attach a source cloned by open_sources at `target`."""
    _ensure(target, stat.S_ISDIR(os.fstat(fd).st_mode))
    sc.move_mount(fd, target)
    os.close(fd)


def open_sources(cfg: dict) -> dict[str, int]:
    """Clone every host-side source as a detached mount, by container destination. Run before unshare."""
    privileged = cfg["privileged"]
    wanted = [("/dev/" + name, "/dev/" + name, False) for name in DEVICES]
    if privileged and os.path.exists("/dev/fuse"):
        wanted.append(("/dev/fuse", "/dev/fuse", False))
    wanted.append((cfg["init"], INIT_PATH, True))
    wanted += [(os.path.join(cfg["etc_dir"], name), "/etc/" + name, False) for name in ("hosts", "resolv.conf")]
    wanted += [(host_dir, target, True) for target, host_dir in cfg.get("cgroup_views", {}).items()]
    for m in cfg["bind_mounts"]:
        if not m["from_container"]:
            if not os.path.exists(m["src"]):
                raise FileNotFoundError(f"bind mount source {m['src']} does not exist")
            wanted.append((m["src"], m["dst"], m["ro"]))
    sources: dict[str, int] = {}
    try:
        for source, target, readonly in wanted:
            sources[target] = fd = sc.open_tree_clone(source)
            if readonly:
                sc.mount_setattr(fd, sc.MOUNT_ATTR_RDONLY)
    except BaseException:
        for fd in sources.values():
            os.close(fd)
        raise
    return sources


def pivot() -> None:
    """Make the working directory (the rootfs mount, entered before unshare) the root; old root at OLD_ROOT."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    root = sc.open_tree_clone(".")  # a fresh bind of the rootfs: the copied mount is locked in a user namespace
    sc.move_mount(root, ".")
    os.fchdir(root)
    os.close(root)
    if os.path.islink(OLD_ROOT[1:]):
        raise ValueError(f"the rootfs has a symlink at {OLD_ROOT}")
    os.makedirs(OLD_ROOT[1:], mode=0o700, exist_ok=True)
    sc.pivot_root(".", OLD_ROOT[1:])
    os.chdir("/")


def _mount_dev(sources: dict[str, int]) -> None:
    _ensure("/dev", True)
    sc.mount("tmpfs", "/dev", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    for target in [t for t in sources if t.startswith("/dev/")]:
        _attach(sources.pop(target), target)
    os.mkdir("/dev/pts", 0o755)
    sc.mount("devpts", "/dev/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir("/dev/shm", 0o1777)
    sc.mount("tmpfs", "/dev/shm", "tmpfs", SAFE_FLAGS, "mode=1777")  # as current GATS expects: no size cap
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


def build(cfg: dict, sources: dict[str, int]) -> None:
    """Everything between unshare and exec of init, run as pid 1 of the new pid namespace."""
    privileged = cfg["privileged"]
    pivot()
    _ensure("/proc", True)
    sc.mount("proc", "/proc", "proc", SAFE_FLAGS)
    _ensure("/sys", True)
    sc.mount("sysfs", "/sys", "sysfs", SAFE_FLAGS | sc.MS_RDONLY)
    sc.umount(OLD_ROOT, sc.MNT_DETACH)
    os.rmdir(OLD_ROOT)
    _mount_dev(sources)
    _ensure("/tmp", True, 0o1777)
    sc.mount("tmpfs", "/tmp", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=1777")
    for m in cfg["bind_mounts"]:
        if m["from_container"]:
            if not os.path.exists(m["src"]):
                raise FileNotFoundError(f"bind mount source {m['src']} does not exist")
            _bind(m["src"], m["dst"], readonly=m["ro"])
    cgroups = [t for t in sources if t.startswith(CGROUP_ROOT)]
    if cgroups:  # a read-only tmpfs holding the container's own cgroup directories
        sc.mount("tmpfs", CGROUP_ROOT, "tmpfs", SAFE_FLAGS, "mode=755")
    for target, fd in sources.items():  # init binary, /etc/hosts, /etc/resolv.conf, cgroups, host bind mounts
        _attach(fd, target)
    if cgroups:
        sc.mount(None, CGROUP_ROOT, None, sc.MS_REMOUNT | sc.MS_RDONLY | SAFE_FLAGS)
    _mask(privileged)
