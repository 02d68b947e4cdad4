"""cgroups for containers: one interface, a v1 driver and a v2 driver, chosen from the host's layout.

Every container cgroup lives below the daemon's own cgroup, in `<own>/<parent>/<name>`; the parent is
"trellis" unless the daemon is given another (tests run several daemons side by side).
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

from garden.models import MEMORY_STAT_KEYS, CPUStat, Limits, PidStat

DEFAULT_PARENT = "trellis"
NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@dataclass
class CgroupStats:
    memory: dict[str, int]
    cpu: CPUStat
    pids: PidStat
    oom_killed: bool


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read_int(path: str, default: int = 0) -> int:
    try:
        text = _read(path).strip()
    except OSError:
        return default
    return default if text in ("", "max") else int(text)


def _kv(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in _read(path).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
    except OSError:
        pass
    return out


def _rmdir_tree(path: str) -> None:
    """rmdir a cgroup and any child cgroups (cgroupfs dirs can only be removed bottom-up)."""
    if not os.path.isdir(path):
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _rmdir_tree(entry.path)
    os.rmdir(path)


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares → v2 cpu.weight, the formula runc and GATS use."""
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    level = math.log2(shares)
    return math.ceil(10 ** ((level * level + 125 * level) / 612.0 - 7.0 / 34.0))


class Cgroups(ABC):
    """Container cgroups by name; `name` is the container handle (or a unique id)."""

    version: int

    @abstractmethod
    def create(self, name: str, limits: Limits, privileged: bool = False) -> None:
        """Make the cgroup(s) and apply limits and the device rules; raises OSError (nothing left behind)."""

    @abstractmethod
    def procs_files(self, name: str) -> list[str]:
        """`cgroup.procs` files a process writes "0" into to join the container."""

    @abstractmethod
    def home_procs_files(self) -> list[str]:
        """`cgroup.procs` files of the daemon's own cgroups (to move a helper back out)."""

    @abstractmethod
    def container_views(self, name: str) -> dict[str, str]:
        """Where each of the container's cgroup directories appears inside it, read-only, as in Guardian:
        container path → host directory."""

    @abstractmethod
    def pids(self, name: str) -> list[int]: ...

    @abstractmethod
    def stats(self, name: str) -> CgroupStats: ...

    @abstractmethod
    def memory_limit(self, name: str) -> int: ...

    @abstractmethod
    def cpu_shares(self, name: str) -> int:
        """v1 cpu.shares, or on v2 the cpu.weight value (what Garden reports as limit_in_shares)."""

    @abstractmethod
    def destroy(self, name: str) -> None:
        """Remove the cgroup(s). Processes must be gone. Idempotent."""

    @abstractmethod
    def names(self) -> list[str]:
        """Names of the container cgroups that exist (for cleaning up after a crash)."""

    @abstractmethod
    def parents(self) -> list[str]:
        """The `trellis` parent cgroup directories the driver made."""

    def remove_parents(self) -> None:
        """rmdir the parent cgroups if no container cgroup is left in them (daemon shutdown)."""
        for path in self.parents():
            try:
                os.rmdir(path)
            except OSError:
                pass


def _mountinfo_cgroups() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) for every cgroup mount."""
    found = []
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        fstype, _src, super_opts = right.split(" ", 2)
        if fstype in ("cgroup", "cgroup2"):
            found.append((fields[4], fstype, set(super_opts.split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) → the daemon's cgroup path in that hierarchy."""
    own = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _id, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            own[c] = path
    return own


# Garden's device cgroup for unprivileged containers: deny all, mknod any, use only the standard set.
DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm",
                "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm", "c 10:229 rwm")


class CgroupsV1(Cgroups):
    version = 1
    CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")

    def __init__(self, mounts: dict[str, str], own: dict[str, str], parent: str):
        self.bases = {c: os.path.join(mounts[c] + own.get(c, "/"), parent) for c in self.CONTROLLERS if c in mounts}
        self.homes = {c: mounts[c] + own.get(c, "/") for c in self.bases}
        self.mount_names = {c: os.path.basename(mounts[c]) for c in self.bases}  # "cpu,cpuacct" when co-mounted
        for base in self.bases.values():
            os.makedirs(base, exist_ok=True)

    def container_views(self, name: str) -> dict[str, str]:
        return {f"/sys/fs/cgroup/{self.mount_names[c]}": self._path(c, name) for c in self.bases}

    def _path(self, controller: str, name: str) -> str:
        return os.path.join(self.bases[controller], name)

    def create(self, name: str, limits: Limits, privileged: bool = False) -> None:
        made = []
        try:
            for c, base in self.bases.items():
                os.makedirs(base, exist_ok=True)
                os.mkdir(self._path(c, name))
                made.append(c)
            mem = limits.memory.limit_in_bytes
            if mem:
                _write(self._path("memory", name) + "/memory.limit_in_bytes", str(mem))
                memsw = self._path("memory", name) + "/memory.memsw.limit_in_bytes"
                if os.path.exists(memsw):
                    _write(memsw, str(mem))
            shares = limits.cpu.weight or limits.cpu.limit_in_shares
            if shares and "cpu" in self.bases:
                _write(self._path("cpu", name) + "/cpu.shares", str(max(2, shares)))
            if limits.pid.max and "pids" in self.bases:
                _write(self._path("pids", name) + "/pids.max", str(limits.pid.max))
            if "devices" in self.bases:
                self._restrict_devices(name, privileged)
        except OSError:
            for c in made:
                _rmdir_tree(self._path(c, name))
            raise

    def _restrict_devices(self, name: str, privileged: bool) -> None:
        path = self._path("devices", name)
        if privileged:
            _write(path + "/devices.allow", "a")
            return
        _write(path + "/devices.deny", "a")
        fd = os.open(path + "/devices.allow", os.O_WRONLY | os.O_CLOEXEC)
        try:
            for rule in DEVICE_RULES:  # the kernel takes one rule per write
                os.write(fd, rule.encode())
        finally:
            os.close(fd)

    def procs_files(self, name: str) -> list[str]:
        return [self._path(c, name) + "/cgroup.procs" for c in self.bases]

    def home_procs_files(self) -> list[str]:
        return [home + "/cgroup.procs" for home in self.homes.values()]

    def pids(self, name: str) -> list[int]:
        base = "pids" if "pids" in self.bases else next(iter(self.bases))
        try:
            return [int(p) for p in _read(self._path(base, name) + "/cgroup.procs").split()]
        except OSError:
            return []

    def stats(self, name: str) -> CgroupStats:
        mem_dir = self._path("memory", name)
        raw = _kv(mem_dir + "/memory.stat")
        memory = {k: raw.get(k, 0) for k in MEMORY_STAT_KEYS}
        memory["TotalUsageTowardLimit"] = raw.get("total_rss", 0) + raw.get("total_cache", 0) - raw.get(
            "total_inactive_file", 0
        )
        memory["anon"] = raw.get("total_rss", 0)
        memory["file"] = raw.get("total_cache", 0)
        acct = self._path("cpuacct", name)
        ticks = _kv(acct + "/cpuacct.stat")
        cpu = CPUStat(
            usage=_read_int(acct + "/cpuacct.usage"),
            user=ticks.get("user", 0) * NS_PER_TICK,
            system=ticks.get("system", 0) * NS_PER_TICK,
        )
        pids_dir = self._path("pids", name)
        pids = PidStat(current=_read_int(pids_dir + "/pids.current"), max=_read_int(pids_dir + "/pids.max"))
        oom = _kv(mem_dir + "/memory.oom_control").get("oom_kill", 0) > 0
        return CgroupStats(memory=memory, cpu=cpu, pids=pids, oom_killed=oom)

    def memory_limit(self, name: str) -> int:
        value = _read_int(self._path("memory", name) + "/memory.limit_in_bytes")
        return 0 if value >= 1 << 62 else value

    def cpu_shares(self, name: str) -> int:
        return _read_int(self._path("cpu", name) + "/cpu.shares")

    def destroy(self, name: str) -> None:
        for c in self.bases:
            _rmdir_tree(self._path(c, name))

    def parents(self) -> list[str]:
        return list(self.bases.values())

    def names(self) -> list[str]:
        found: set[str] = set()
        for base in self.bases.values():
            found.update(e.name for e in os.scandir(base) if e.is_dir())
        return sorted(found)


class CgroupsV2(Cgroups):
    """Unified hierarchy. The daemon moves itself into `<own>/daemon` so `<own>` may delegate controllers."""

    version = 2

    def container_views(self, name: str) -> dict[str, str]:
        return {"/sys/fs/cgroup": self._path(name)}

    def __init__(self, mount: str, own: str, parent: str):
        top = mount + own
        self.base = os.path.join(top, parent)
        self.home = top if own == "/" else os.path.join(top, "daemon")
        if own != "/":
            os.makedirs(self.home, exist_ok=True)
            for pid in _read(top + "/cgroup.procs").split():
                try:
                    _write(self.home + "/cgroup.procs", pid)
                except OSError:
                    pass
        available = _read(top + "/cgroup.controllers").split()
        wanted = [c for c in ("memory", "cpu", "pids") if c in available]
        if wanted:
            _write(top + "/cgroup.subtree_control", " ".join("+" + c for c in wanted))
        os.makedirs(self.base, exist_ok=True)
        if wanted:
            _write(self.base + "/cgroup.subtree_control", " ".join("+" + c for c in wanted))

    def _path(self, name: str) -> str:
        return os.path.join(self.base, name)

    def create(self, name: str, limits: Limits, privileged: bool = False) -> None:
        """No device rules: a v2 BPF device filter is not implemented yet."""
        path = self._path(name)
        os.mkdir(path)
        try:
            if limits.memory.limit_in_bytes:
                _write(path + "/memory.max", str(limits.memory.limit_in_bytes))
                if os.path.exists(path + "/memory.swap.max"):
                    _write(path + "/memory.swap.max", "0")
            shares = limits.cpu.weight or limits.cpu.limit_in_shares
            if shares:
                _write(path + "/cpu.weight", str(shares_to_weight(shares)))
            if limits.pid.max:
                _write(path + "/pids.max", str(limits.pid.max))
        except OSError:
            _rmdir_tree(path)
            raise

    def procs_files(self, name: str) -> list[str]:
        return [self._path(name) + "/cgroup.procs"]

    def home_procs_files(self) -> list[str]:
        return [self.home + "/cgroup.procs"]

    def pids(self, name: str) -> list[int]:
        try:
            return [int(p) for p in _read(self._path(name) + "/cgroup.procs").split()]
        except OSError:
            return []

    def stats(self, name: str) -> CgroupStats:
        path = self._path(name)
        raw = _kv(path + "/memory.stat")
        memory = {k: raw.get(k, 0) for k in MEMORY_STAT_KEYS}
        memory.update(
            rss=raw.get("anon", 0), total_rss=raw.get("anon", 0), cache=raw.get("file", 0),
            total_cache=raw.get("file", 0), active_anon=raw.get("active_anon", 0),
            inactive_file=raw.get("inactive_file", 0), total_inactive_file=raw.get("inactive_file", 0),
        )
        memory["TotalUsageTowardLimit"] = _read_int(path + "/memory.current") - raw.get("inactive_file", 0)
        cpu_raw = _kv(path + "/cpu.stat")
        cpu = CPUStat(
            usage=cpu_raw.get("usage_usec", 0) * 1000,
            user=cpu_raw.get("user_usec", 0) * 1000,
            system=cpu_raw.get("system_usec", 0) * 1000,
        )
        pids = PidStat(current=_read_int(path + "/pids.current"), max=_read_int(path + "/pids.max"))
        oom = _kv(path + "/memory.events").get("oom_kill", 0) > 0
        return CgroupStats(memory=memory, cpu=cpu, pids=pids, oom_killed=oom)

    def memory_limit(self, name: str) -> int:
        return _read_int(self._path(name) + "/memory.max")

    def cpu_shares(self, name: str) -> int:
        return _read_int(self._path(name) + "/cpu.weight")

    def destroy(self, name: str) -> None:
        _rmdir_tree(self._path(name))

    def parents(self) -> list[str]:
        return [self.base]

    def names(self) -> list[str]:
        return sorted(e.name for e in os.scandir(self.base) if e.is_dir())


def detect(parent: str = DEFAULT_PARENT) -> Cgroups:
    """The driver for this host: v1 when the memory controller is on a v1 hierarchy, else v2."""
    v1: dict[str, str] = {}
    unified = None
    for mountpoint, fstype, opts in _mountinfo_cgroups():
        if fstype == "cgroup":
            for c in CgroupsV1.CONTROLLERS:
                if c in opts:
                    v1.setdefault(c, mountpoint)
        else:
            unified = mountpoint
    own = _own_paths()
    if "memory" in v1:
        return CgroupsV1(v1, own, parent)
    if unified is None:
        raise OSError("no cgroup filesystem is mounted")
    return CgroupsV2(unified, own.get("", "/"), parent)
