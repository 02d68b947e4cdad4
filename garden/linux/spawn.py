"""What the helper's children do: make a container (namespaces + pid 1) or start a process in one.

Each entry point runs in a fresh fork of the single-threaded helper, reports over its SEQPACKET
status socket with JSON messages, and ends with os._exit. Nothing here may start a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import select
import signal
import socket
import struct
import termios

from garden.linux import channel, mounts, seccomp_profile, security, users
from kernel import idmap
from kernel import syscalls as sc

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


RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                 signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def reset_signals() -> None:
    """Undo what CPython changed, so exec'd programs start with default dispositions."""
    for sig in RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP


def container(cfg: dict, fds: list[int]) -> int:
    """Make the namespaces, fork pid 1 into them; report {"pid"} at once, then {"ready"} or {"error"}.

    The early pid lets the daemon set up the network namespace while pid 1 builds the filesystem.

    fds: the status socket, then (unprivileged) the pipes of the helper that writes the user namespace's maps.
    """
    status = socket.socket(fileno=fds[0])
    err_r, err_w = os.pipe()
    try:
        _write_all(cfg["cgroup_procs"], "0")
        sources = mounts.open_sources(cfg)
        os.chdir(cfg["rootfs"])  # the new mount namespace keeps it as the working directory to pivot into
        flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWNET | sc.CLONE_NEWPID
        if cfg["userns"]:
            for name in ("hosts", "resolv.conf"):  # writable by container root only, as in Garden
                os.chown(os.path.join(cfg["etc_dir"], name), idmap.ROOT_HOST_ID, idmap.ROOT_HOST_ID)
            idmap.unshare_mapped(fds[1], fds[2])
        sc.unshare(flags)
        pid = os.fork()
        if pid == 0:
            os.close(err_r)
            _container_init(cfg, sources, err_w)
        for fd in sources.values():
            os.close(fd)
        os.close(err_w)
        err_w = -1
        channel.send(status, {"pid": pid})
        error = _read_error(err_r)
        channel.send(status, {"error": error} if error else {"ready": True})
        return 1 if error else 0
    except Exception as e:  # reported to the daemon, which answers the client
        channel.send(status, {"error": f"{type(e).__name__}: {e}"})
        return 1


def _read_error(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def _container_init(cfg: dict, sources: dict[str, int], err_w: int) -> None:
    """pid 1 of the new namespaces: build the filesystem, then exec the reaper."""
    try:
        socket.sethostname(cfg["hostname"])
        _loopback_up()
        mounts.build(cfg, sources)
        _confine(cfg, uid=0)
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


def _confine(cfg: dict, uid: int) -> None:
    """Garden's capabilities, plus seccomp for unprivileged (user-namespaced) containers, for what runs next."""
    unprivileged = cfg["userns"]
    security.confine(security.capability_set(not unprivileged, uid),
                     seccomp_profile.bpf() if unprivileged else None, cfg.get("no_new_privs", False))


def enter(init_pid: int, userns: bool, names: tuple[tuple[str, int], ...] = NAMESPACES) -> int | None:
    """setns into the namespaces `names` of a container's pid 1 (mount last), as host root.

    Returns an fd of its user namespace (None for a privileged container), opened while the host's
    /proc is still in view: the caller does what needs host root, then calls join_userns.
    """
    paths = ((("user", 0),) if userns else ()) + names
    nsfds = [(os.open(f"/proc/{init_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), kind) for name, kind in paths]
    for fd, kind in nsfds[1 if userns else 0:]:
        sc.setns(fd, kind)
        os.close(fd)
    os.chdir("/")
    return nsfds[0][0] if userns else None


def join_userns(fd: int | None) -> None:
    """Join the container's user namespace (if any, from enter) and become its root: host ids are unmapped there."""
    if fd is None:
        return
    sc.setns(fd, sc.CLONE_NEWUSER)
    os.close(fd)
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


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


def _open_pty(user: users.User, columns: int, rows: int) -> tuple[int, str]:
    """A pty in the container's devpts: (master fd, slave path), the slave given to `user`."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
    slave = f"/dev/pts/{number}"
    os.chown(slave, user.uid, 5)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows or 24, columns or 80, 0, 0))
    return master, slave


def _exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)


def _stdio_actions(cfg: dict, fds: list[int], slave: str | None) -> list[tuple]:
    """posix_spawn file actions giving the process its stdin/stdout/stderr (a pty opened as its ctty)."""
    if slave is not None:
        # opened in the new session without O_NOCTTY, the terminal becomes the controlling tty
        return [(os.POSIX_SPAWN_OPEN, 0, slave, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)]
    return [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds[1:4])]


def _spawn_as(user: users.User, cfg: dict, env: list[str], actions: list[tuple]) -> int:
    """posix_spawn (vfork: no page copying) the process as `user`.

    The shim takes the user's ids as its *real* ids and keeps effective root; POSIX_SPAWN_RESETIDS
    then sets the child's effective ids from them, and execve copies those into the saved ids, so
    the process ends up with no way back to root. The shim returns to root right after.
    """
    for name, value in cfg["rlimits"].items():
        kind, value = _clamped(name, value)
        resource.setrlimit(kind, (value, value))
    os.umask(0o022)
    env_map = dict(e.partition("=")[::2] for e in env)
    os.environ["PATH"] = env_map.get("PATH", USER_PATH)  # posix_spawnp searches the caller's PATH
    os.setgroups(user.groups)
    os.setresgid(user.gid, 0, 0)
    os.setresuid(user.uid, 0, 0)
    try:
        return os.posix_spawnp(cfg["path"], [cfg["path"]] + cfg["args"], env_map, file_actions=actions,
                               setsid=True, resetids=True, setsigdef=RESET_SIGNALS, setsigmask=())
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)


def _not_found(path: str) -> str:
    """The message Garden clients recognise as ExecutableNotFoundError (runc's wording)."""
    if "/" not in path:
        return f'exec: "{path}": executable file not found in $PATH'
    return f'exec: "{path}": stat {path}: no such file or directory'


def attach_listener(path: str | None) -> socket.socket | None:
    """The socket a restarted daemon connects to, to adopt this shim's process (made in the host's mounts)."""
    if not path:
        return None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with channel.short_path(path) as short:
        listener.bind(short)
    os.chmod(path, 0o600)
    listener.listen(1)
    return listener


def _report_until_exit(status: socket.socket, pid: int, home_cgroups: list[int], stdio: list[int],
                       outputs: list[int], listener: socket.socket | None = None, tty: bool = False,
                       process_id: str = "") -> int:
    """Leave the container's cgroup, report the pid, then the exit status. Returns the shim's exit code.

    `outputs` are the shim's own copies of the process's output pipes (or pty master): unread while a
    daemon reads them. Should the daemon die, the shim drains them so the process neither dies of
    SIGPIPE nor blocks when it next writes, until a restarted daemon connects to `listener`: it is then
    handed the outputs and gets the exit status, as dadoo lets a restarted Guardian re-attach.
    """
    for fd in home_cgroups:  # out before the pid is known: a Stop signals the container's cgroup members
        os.write(fd, b"0")
        os.close(fd)
    for fd in stdio:
        os.close(fd)
    channel.send(status, {"pid": pid})
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(status.fileno(), select.POLLIN)  # readable only when the daemon has gone (EOF)
    if listener is not None:
        poller.register(listener.fileno(), select.POLLIN)
    daemon = status
    while True:
        ready = {fd for fd, _ in poller.poll()}
        if pidfd in ready:
            break
        if daemon is not None and daemon.fileno() in ready:
            poller.unregister(daemon.fileno())
            daemon.close()
            daemon = None
            for fd in outputs:
                poller.register(fd, select.POLLIN)
        if listener is not None and listener.fileno() in ready:
            conn, _ = listener.accept()
            if daemon is not None:  # one daemon at a time
                conn.close()
                continue
            daemon = conn
            channel.send(daemon, {"id": process_id, "pid": pid, "tty": tty}, outputs)
            poller.register(daemon.fileno(), select.POLLIN)
            for fd in outputs:
                poller.unregister(fd)
            continue
        for fd in ready & set(outputs):
            try:
                if not os.read(fd, 1 << 16):
                    poller.unregister(fd)
            except OSError:  # EIO: a pty whose other side closed
                poller.unregister(fd)
    _, wait_status = os.waitpid(pid, 0)
    if daemon is not None:
        channel.send(daemon, {"exit": _exit_status(wait_status)})
    return 0


def process(cfg: dict, fds: list[int]) -> int:
    """The shim: enter the container, spawn the process into its pid namespace, report pid and exit status."""
    status = socket.socket(fileno=fds[0])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a Stop while the shim is still in the container's cgroup
    try:
        # opened before entering: the container's mount namespace has no view of the host's cgroupfs
        home_cgroups = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cfg["home_cgroup_procs"]]
        listener = attach_listener(cfg.get("attach_socket"))
        _write_all(cfg["cgroup_procs"], "0")
        userns = enter(cfg["init_pid"], cfg["userns"])
        user = users.resolve(cfg["user"])
        for fd in fds[1:4]:  # so the process may reopen its stdio (/dev/stdout), as runc does
            os.fchown(fd, idmap.host_id(user.uid) if userns else user.uid,
                      idmap.host_id(user.gid) if userns else user.gid)
        join_userns(userns)
        workdir = cfg["dir"] or user.home
        if not os.path.isabs(workdir):
            workdir = os.path.join(user.home, workdir)
        if not os.path.isdir(workdir):
            make_dir_for(workdir, user)
        os.chdir(workdir)
        slave = None
        outputs = fds[4:6]
        if cfg["tty"] is not None:
            master, slave = _open_pty(user, cfg["tty"]["columns"], cfg["tty"]["rows"])
            channel.send(status, {"tty": True}, [master])
            outputs = [master]
        _confine(cfg, user.uid)
        try:
            pid = _spawn_as(user, cfg, process_env(cfg["env"], user), _stdio_actions(cfg, fds, slave))
        except FileNotFoundError:
            channel.send(status, {"error": _not_found(cfg["path"]), "kind": "not_found"})
            return 1
        return _report_until_exit(status, pid, home_cgroups, fds[1:4], outputs, listener, cfg["tty"] is not None,
                                  cfg["id"])
    except BrokenPipeError:
        return 0  # the daemon went away; the process ran to its end anyway
    except Exception as e:
        kind = "user" if isinstance(e, users.UnknownUserError) else "other"
        channel.send(status, {"error": f"{cfg['path']}: {e}" if isinstance(e, OSError) else str(e), "kind": kind})
        return 1


def _clamped(name: str, value: int) -> tuple[int, int]:
    kind = getattr(resource, "RLIMIT_" + name.upper())
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    return kind, value


def pea(cfg: dict, fds: list[int]) -> int:
    """A process in its own rootfs and mount namespace that shares every other namespace of a container.

    The shim joins the pea's cgroup and the container's user/ipc/uts/net/pid namespaces, makes a new
    mount namespace, and forks the process, which builds its filesystem (as a container's pid 1 does,
    with the container's /etc/hosts and /etc/resolv.conf) and execs. Reports like `process`.
    """
    status = socket.socket(fileno=fds[0])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        home_cgroups = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cfg["home_cgroup_procs"]]
        _write_all(cfg["cgroup_procs"], "0")
        sources = mounts.open_sources(cfg)
        rootfs = os.open(cfg["rootfs"], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        join_userns(enter(cfg["init_pid"], cfg["userns"], NAMESPACES[:-1]))
        os.fchdir(rootfs)  # mounts.pivot() pivots into the working directory, which unshare carries over
        os.close(rootfs)
        sc.unshare(sc.CLONE_NEWNS)
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(err_r)
            _pea_exec(cfg, sources, fds, status, err_w)
        for fd in [*sources.values(), err_w]:
            os.close(fd)
        error = _read_error(err_r)
        if error:
            os.waitpid(pid, 0)
            channel.send(status, json.loads(error))
            return 1
        return _report_until_exit(status, pid, home_cgroups, fds[1:4], fds[4:6])
    except BrokenPipeError:
        return 0
    except Exception as e:
        channel.send(status, {"error": f"{type(e).__name__}: {e}", "kind": "other"})
        return 1


def _pea_exec(cfg: dict, sources: dict[str, int], fds: list[int], status: socket.socket, err_w: int) -> None:
    """In the pea's namespaces: build its filesystem, become the user, exec. Errors go to err_w as JSON."""
    try:
        mounts.build(cfg, sources)
        user = users.resolve(cfg["user"])
        workdir = cfg["dir"] or "/"
        if not os.path.isdir(workdir):
            make_dir_for(workdir, user)
        os.chdir(workdir)
        os.setsid()
        if cfg["tty"] is not None:
            master, slave = _open_pty(user, cfg["tty"]["columns"], cfg["tty"]["rows"])
            channel.send(status, {"tty": True}, [master])
            stdio = [os.open(slave, os.O_RDWR)] * 3  # the session's controlling terminal
        else:
            stdio = fds[1:4]
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        os.closerange(3, err_w)
        os.closerange(err_w + 1, MAX_FD)
        for name, value in cfg["rlimits"].items():
            kind, value = _clamped(name, value)
            resource.setrlimit(kind, (value, value))
        os.umask(0o022)
        _confine(cfg, user.uid)
        os.setgroups(user.groups)
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
        reset_signals()
        env = dict(e.partition("=")[::2] for e in process_env(cfg["env"], user))
        os.execvpe(cfg["path"], [cfg["path"]] + cfg["args"], env)  # searches env's PATH
    except FileNotFoundError:
        os.write(err_w, json.dumps({"error": _not_found(cfg["path"]), "kind": "not_found"}).encode())
    except users.UnknownUserError as e:
        os.write(err_w, json.dumps({"error": str(e), "kind": "user"}).encode())
    except BaseException as e:
        os.write(err_w, json.dumps({"error": f"{cfg['path']}: {type(e).__name__}: {e}", "kind": "other"}).encode())
    os._exit(127)
