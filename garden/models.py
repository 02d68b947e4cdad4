"""Plain data types of the Garden API, shared by the HTTP layer, the engine and the client.

Field names are Pythonic; `garden/api/codec.py` maps them to and from the exact wire keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Types owned by the image and network modules, used here as they are (garden imports them, never the reverse).
from images.provider import DISK_SCOPE_EXCLUSIVE, DISK_SCOPE_TOTAL, DiskLimits, DiskStat  # noqa: F401
from netns.networker import (  # noqa: F401
    PROTOCOL_ALL,
    PROTOCOL_ICMP,
    PROTOCOL_ICMPV6,
    PROTOCOL_TCP,
    PROTOCOL_UDP,
    ICMPControl,
    IPRange,
    NetIn,
    NetOutRule,
    NetworkStat,
    PortRange,
)

# Enums as on the wire (uint8 / int).
SIGNAL_TERMINATE = 0
SIGNAL_KILL = 1
BIND_MOUNT_RO = 0
BIND_MOUNT_RW = 1
ORIGIN_HOST = 0
ORIGIN_CONTAINER = 1

RLIMIT_NAMES = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
    "nofile", "nproc", "rss", "rtprio", "sigpending", "stack",
)


@dataclass
class ImageRef:
    uri: str = ""
    username: str = ""
    password: str = ""


@dataclass
class BindMount:
    src_path: str = ""
    dst_path: str = ""
    mode: int = BIND_MOUNT_RO
    origin: int = ORIGIN_HOST


@dataclass
class BandwidthLimits:
    rate: int = 0
    burst: int = 0


@dataclass
class CPULimits:
    weight: int = 0
    limit_in_shares: int = 0


@dataclass
class MemoryLimits:
    limit_in_bytes: int = 0


@dataclass
class PidLimits:
    max: int = 0


@dataclass
class Limits:
    bandwidth: BandwidthLimits = field(default_factory=BandwidthLimits)
    cpu: CPULimits = field(default_factory=CPULimits)
    disk: DiskLimits = field(default_factory=DiskLimits)
    memory: MemoryLimits = field(default_factory=MemoryLimits)
    pid: PidLimits = field(default_factory=PidLimits)


@dataclass
class ContainerSpec:
    handle: str = ""
    grace_time_ns: int = 0
    rootfs: str = ""
    image: ImageRef = field(default_factory=ImageRef)
    bind_mounts: list[BindMount] = field(default_factory=list)
    network: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    privileged: bool = False
    limits: Limits = field(default_factory=Limits)
    net_out: list[NetOutRule] = field(default_factory=list)
    net_in: list[NetIn] = field(default_factory=list)


@dataclass
class WindowSize:
    columns: int = 0
    rows: int = 0


@dataclass
class TTYSpec:
    window_size: WindowSize | None = None


@dataclass
class ProcessLimits:
    cpu: CPULimits = field(default_factory=CPULimits)
    memory: MemoryLimits = field(default_factory=MemoryLimits)


@dataclass
class ProcessSpec:
    id: str = ""
    path: str = ""
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    dir: str = ""
    user: str = ""
    rlimits: dict[str, int] = field(default_factory=dict)  # keys from RLIMIT_NAMES
    override_limits: ProcessLimits | None = None
    tty: TTYSpec | None = None
    image: ImageRef = field(default_factory=ImageRef)
    bind_mounts: list[BindMount] = field(default_factory=list)


@dataclass
class Capacity:
    memory_in_bytes: int = 0
    disk_in_bytes: int = 0
    schedulable_disk_in_bytes: int = 0
    max_containers: int = 0


@dataclass
class PortMapping:
    host_port: int = 0
    container_port: int = 0


@dataclass
class ContainerInfo:
    state: str = ""
    events: list[str] | None = None
    host_ip: str = ""
    container_ip: str = ""
    container_ipv6: str = ""
    external_ip: str = ""
    container_path: str = ""
    process_ids: list[str] | None = None
    properties: dict[str, str] | None = None
    mapped_ports: list[PortMapping] | None = None


MEMORY_STAT_KEYS = (
    "active_anon", "active_file", "cache", "hierarchical_memory_limit", "inactive_anon",
    "inactive_file", "mapped_file", "pgfault", "pgmajfault", "pgpgin", "pgpgout", "rss",
    "total_active_anon", "total_active_file", "total_cache", "total_inactive_anon",
    "total_inactive_file", "total_mapped_file", "total_pgfault", "total_pgmajfault",
    "total_pgpgin", "total_pgpgout", "total_rss", "total_unevictable", "unevictable", "swap",
    "hierarchical_memsw_limit", "total_swap", "TotalUsageTowardLimit", "anon", "file", "swapcached",
)


@dataclass
class CPUStat:
    usage: int = 0
    user: int = 0
    system: int = 0


@dataclass
class PidStat:
    current: int = 0
    max: int = 0


@dataclass
class Metrics:
    memory: dict[str, int] = field(default_factory=dict)  # keys from MEMORY_STAT_KEYS
    cpu: CPUStat = field(default_factory=CPUStat)
    disk: DiskStat = field(default_factory=DiskStat)
    network: NetworkStat | None = None
    pids: PidStat = field(default_factory=PidStat)
    age_ns: int = 0
    cpu_entitlement: int = 0
