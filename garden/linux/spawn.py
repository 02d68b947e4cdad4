"""What the helper's children do: make a container (namespaces + pid 1) or start a process in one.

Each entry point runs in a fresh fork of the single-threaded helper, reports over its SEQPACKET
status socket with JSON messages, and ends with os._exit. Nothing here may start a thread.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import socket
import struct
import termios

from garden.linux import channel, mounts, users
from garden.linux import syscalls as sc

NAMESPACES = (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET),
              ("pid", sc.CLONE_NEWPID), ("mnt", sc.CLONE_NEWNS))
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
MAX_FD = 65536


def _write_all(path_list: list[str], value: str) -> None:
    for path in path_list:
        with open(path, "w") as f:
            f.write(value)


def reset_signals() -> None:
    """Undo what CPython changed, so exec'd programs start with default dispositions."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP


def _map_ids(child_pid: int, cfg: dict) -> None:
    with open(f"/proc/{child_pid}/setgroups", "w") as f:
        f.write("allow")
    with open(f"/proc/{child_pid}/uid_map", "w") as f:
        f.write(cfg["uid_map"])
    with open(f"/proc/{child_pid}/gid_map", "w") as f:
        f.write(cfg["gid_map"])


def _unshare_with_user_ns(cfg: dict, flags: int) -> None:
    """unshare(flags | CLONE_NEWUSER) and have a short-lived sibling outside write our id maps."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    me = os.getpid()
    mapper = os.fork()
    if mapper == 0:
        try:
            os.read(go_r, 1)
            _map_ids(me, cfg)
            os.write(done_w, b"k")
        finally:
            os._exit(0)
    sc.unshare(flags | sc.CLONE_NEWUSER)
    os.write(go_w, b"g")
    ok = os.read(done_r, 1)
    os.waitpid(mapper, 0)
    for fd in (go_r, go_w, done_r, done_w):
        os.close(fd)
    if ok != b"k":
        raise OSError("could not write the user namespace id maps")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def container(cfg: dict, fds: list[int]) -> int:
    """Make the namespaces, fork pid 1 into them, report {"pid"} or {"error"}."""
    status = socket.socket(fileno=fds[0])
    err_r, err_w = os.pipe()
    try:
        _write_all(cfg["cgroup_procs"], "0")
        flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWNET | sc.CLONE_NEWPID
        if cfg["uid_map"]:
            _unshare_with_user_ns(cfg, flags)
        else:
            sc.unshare(flags)
        pid = os.fork()
        if pid == 0:
            os.close(err_r)
            _container_init(cfg, err_w)
        os.close(err_w)
        err_w = -1
        error = _read_error(err_r)
        if error:
            channel.send(status, {"error": error})
            return 1
        channel.send(status, {"pid": pid})
        return 0
    except Exception as e:  # reported to the daemon, which answers the client
        channel.send(status, {"error": f"{type(e).__name__}: {e}"})
        return 1


def _read_error(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def _container_init(cfg: dict, err_w: int) -> None:
    """pid 1 of the new namespaces: build the filesystem, then exec the reaper."""
    try:
        socket.sethostname(cfg["hostname"])
        _loopback_up()
        mounts.build(cfg)
        reset_signals()
        os.closerange(3, err_w)
        os.closerange(err_w + 1, MAX_FD)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execv(mounts.INIT_PATH, [mounts.INIT_PATH, "-P"])
    except BaseException as e:
        os.write(err_w, f"{type(e).__name__}: {e}".encode())
    os._exit(1)


def enter(init_pid: int, userns: bool, names: tuple[tuple[str, int], ...] = NAMESPACES) -> None:
    """setns into the namespaces of a container's pid 1 (user first, mount last)."""
    order = ((("user", sc.CLONE_NEWUSER),) if userns else ()) + names
    nsfds = [(os.open(f"/proc/{init_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), kind) for name, kind in order]
    for fd, kind in nsfds:
        sc.setns(fd, kind)
        os.close(fd)
    os.chdir("/")


def process_env(env: list[str], user: users.User) -> list[str]:
    """Garden's defaults: PATH by uid, USER and HOME from the user, spec values winning."""
    keys = {e.partition("=")[0] for e in env}
    extra = []
    if "PATH" not in keys:
        extra.append("PATH=" + (ROOT_PATH if user.uid == 0 else USER_PATH))
    if "USER" not in keys:
        extra.append("USER=" + user.name)
    if "HOME" not in keys:
        extra.append("HOME=" + user.home)
    return extra + env


def make_dir_for(path: str, user: users.User) -> None:
    """mkdir -p `path`, giving every directory it creates to `user`."""
    missing = []
    while path not in ("", "/") and not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    for p in reversed(missing):
        os.mkdir(p, 0o755)
        os.chown(p, user.uid, user.gid)


def _open_pty(user: users.User, columns: int, rows: int) -> tuple[int, int]:
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    os.fchown(slave, user.uid, 5)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows or 24, columns or 80, 0, 0))
    return master, slave


def _exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)


def process(cfg: dict, fds: list[int]) -> int:
    """The shim: enter the container, fork the process into its pid namespace, report pid and exit status."""
    status = socket.socket(fileno=fds[0])
    try:
        # opened before entering: the container's mount namespace has no view of the host's cgroupfs
        home_cgroups = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cfg["home_cgroup_procs"]]
        _write_all(cfg["cgroup_procs"], "0")
        enter(cfg["init_pid"], cfg["userns"])
        user = users.resolve(cfg["user"])
        workdir = cfg["dir"] or user.home
        if not os.path.isabs(workdir):
            workdir = os.path.join(user.home, workdir)
        if not os.path.isdir(workdir):
            make_dir_for(workdir, user)
        if cfg["tty"] is not None:
            master, slave = _open_pty(user, cfg["tty"]["columns"], cfg["tty"]["rows"])
            stdio = (slave, slave, slave)
            channel.send(status, {"tty": True}, [master])
            os.close(master)
        else:
            stdio = tuple(fds[1:4])
        env = process_env(cfg["env"], user)
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(err_r)
            _exec_process(cfg, user, workdir, env, stdio, err_w)
        os.close(err_w)
        for fd in home_cgroups:  # the shim itself must not count against the container's limits
            os.write(fd, b"0")
            os.close(fd)
        for fd in set(stdio):
            os.close(fd)
        error = _read_error(err_r)  # empty once exec succeeded (the pipe is close-on-exec)
        if error:
            os.waitpid(pid, 0)
            channel.send(status, json.loads(error))
            return 1
        channel.send(status, {"pid": pid})
        _, wait_status = os.waitpid(pid, 0)
        channel.send(status, {"exit": _exit_status(wait_status)})
        return 0
    except BrokenPipeError:
        return 0  # the daemon went away; the process ran to its end anyway
    except Exception as e:
        kind = "user" if isinstance(e, users.UnknownUserError) else "other"
        channel.send(status, {"error": str(e), "kind": kind})
        return 1


def _clamped(name: str, value: int) -> tuple[int, int]:
    kind = getattr(resource, "RLIMIT_" + name.upper())
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    return kind, value


def _exec_process(cfg: dict, user: users.User, workdir: str, env: list[str], stdio: tuple, err_w: int) -> None:
    try:
        os.setsid()
        if cfg["tty"] is not None:
            fcntl.ioctl(stdio[0], termios.TIOCSCTTY, 0)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        os.closerange(3, err_w)
        os.closerange(err_w + 1, MAX_FD)
        for name, value in cfg["rlimits"].items():
            kind, value = _clamped(name, value)
            resource.setrlimit(kind, (value, value))
        os.setgroups(user.groups)
        os.setgid(user.gid)
        os.setuid(user.uid)
        os.chdir(workdir)
        reset_signals()
        env_map = dict(e.partition("=")[::2] for e in env)
        os.execvpe(cfg["path"], [cfg["path"]] + cfg["args"], env_map)  # searches env_map's PATH
    except FileNotFoundError:
        message = (f'exec: "{cfg["path"]}": executable file not found in $PATH' if "/" not in cfg["path"]
                   else f'exec: "{cfg["path"]}": stat {cfg["path"]}: no such file or directory')
        os.write(err_w, json.dumps({"error": message, "kind": "not_found"}).encode())
    except BaseException as e:
        code = e.errno if isinstance(e, OSError) and e.errno else 0
        os.write(err_w, json.dumps({"error": f"{cfg['path']}: {e}", "kind": "other", "errno": code}).encode())
    os._exit(127)

