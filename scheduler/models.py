"""The scheduler's data: desired LRPs, actual LRPs, tasks, cells — and which state changes are legal.

Modelled on Diego's BBS (`../shared/spec/scheduler.md` §1). These are plain values; the only code that
moves a row from one state to another is `scheduler/transitions.py`, through compare-and-set writes.
Timestamps are float seconds since the epoch. JSON is `to_json()` / `from_json()` on every type.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Self

GUID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")  # Diego's process_guid grammar
DEFAULT_DOMAIN = "trellis"


class ActualState(StrEnum):
    UNCLAIMED = "UNCLAIMED"
    CLAIMED = "CLAIMED"
    RUNNING = "RUNNING"
    CRASHED = "CRASHED"


class Presence(StrEnum):
    ORDINARY = "ORDINARY"
    SUSPECT = "SUSPECT"  # its cell lost presence; kept (still routable) until the replacement runs


class TaskState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    RESOLVING = "RESOLVING"


class InvalidInput(ValueError):
    """A request the brain refuses: the message says which field and why."""


class TransitionError(Exception):
    """An illegal or lost compare-and-set state change (Diego's InvalidStateTransition/ResourceConflict)."""


# Diego's AllowsTransitionTo: (from, to) -> whether the instance key must stay the same.
# None: any instance key (or none) is fine. True: same instance key. False: no instance key after.
_ACTUAL_TRANSITIONS: dict[tuple[ActualState, ActualState], bool | None] = {
    (ActualState.UNCLAIMED, ActualState.UNCLAIMED): None,
    (ActualState.UNCLAIMED, ActualState.CLAIMED): None,
    (ActualState.UNCLAIMED, ActualState.RUNNING): None,
    (ActualState.CLAIMED, ActualState.UNCLAIMED): False,
    (ActualState.CLAIMED, ActualState.CLAIMED): True,
    (ActualState.CLAIMED, ActualState.CRASHED): True,
    (ActualState.CLAIMED, ActualState.RUNNING): None,
    (ActualState.RUNNING, ActualState.UNCLAIMED): False,
    (ActualState.RUNNING, ActualState.CLAIMED): True,
    (ActualState.RUNNING, ActualState.RUNNING): True,
    (ActualState.RUNNING, ActualState.CRASHED): True,
    (ActualState.CRASHED, ActualState.UNCLAIMED): False,
    (ActualState.CRASHED, ActualState.CLAIMED): True,
    (ActualState.CRASHED, ActualState.RUNNING): True,
}

_TASK_TRANSITIONS = {
    (TaskState.PENDING, TaskState.RUNNING),
    (TaskState.RUNNING, TaskState.COMPLETED),
    (TaskState.PENDING, TaskState.COMPLETED),  # cancel / fail short-circuit (failed=True)
    (TaskState.COMPLETED, TaskState.RESOLVING),
    (TaskState.RESOLVING, TaskState.COMPLETED),  # convergence demotes a stuck RESOLVING
}


class _Json:
    """to_json/from_json for flat dataclasses whose nested fields say how to rebuild themselves."""

    _nested: dict[str, type] = {}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict):
            raise InvalidInput(f"{cls.__name__} must be a JSON object")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        values = dict(data)
        for name, kind in cls._nested.items():
            if name in values and values[name] is not None:
                value = values[name]
                values[name] = [kind.from_json(v) for v in value] if isinstance(value, list) \
                    else kind.from_json(value)
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidInput(f"{cls.__name__}: {exc}") from None


@dataclass
class RestartPolicy(_Json):
    """Diego's crash restart calculator, per LRP (§3.5), with the issue's choice of 3 immediate restarts.

    Crash n (the count after this crash) restarts at once while n <= immediate_restarts; after that it
    waits min(min_backoff_s * 2**(n - immediate_restarts - 1), max_backoff_s); from max_restarts on it stays
    CRASHED. A crash after more than reset_after_s RUNNING counts as the first again.
    """

    immediate_restarts: int = 3
    min_backoff_s: float = 30.0
    max_backoff_s: float = 960.0
    max_restarts: int = 200
    reset_after_s: float = 300.0

    def next_crash_count(self, crash_count: int, was_running_since: float | None, now: float) -> int:
        """The crash count after a crash now (reset when it had been RUNNING long enough)."""
        if was_running_since is not None and now - was_running_since > self.reset_after_s:
            return 1
        return crash_count + 1

    def restarts_immediately(self, crash_count: int) -> bool:
        return crash_count <= self.immediate_restarts

    def restart_at(self, crash_count: int, since: float) -> float | None:
        """When a CRASHED instance with this count may be restarted; None when it never will."""
        if crash_count >= self.max_restarts:
            return None
        if self.restarts_immediately(crash_count):
            return since
        exponent = crash_count - self.immediate_restarts - 1
        return since + min(self.min_backoff_s * 2 ** min(exponent, 30), self.max_backoff_s)


@dataclass
class HealthCheck(_Json):
    """How the rep decides an instance is RUNNING and stays healthy.

    kind: "process" (alive), "tcp" (connect to port), "http" (GET path on port answers 2xx), "none".
    port 0 means the LRP's first port.
    """

    kind: str = "process"
    port: int = 0
    path: str = "/"
    interval_s: float = 2.0
    timeout_s: float = 1.0


@dataclass
class PortMapping(_Json):
    container_port: int
    host_port: int


@dataclass
class NetInfo(_Json):
    address: str = ""  # the cell's address (where host ports are reachable)
    instance_address: str = ""  # the container's IP
    ports: list[PortMapping] = field(default_factory=list)

    _nested = {"ports": PortMapping}


@dataclass
class DesiredLRP(_Json):
    process_guid: str
    image: str  # pinned: "host:port/name@sha256:<64 hex>" in the cache
    command: list[str]  # argv of the long-running process
    instances: int = 1
    domain: str = DEFAULT_DOMAIN
    memory_mb: int = 128
    disk_mb: int = 0
    max_pids: int = 0
    cpu_weight: int = 100
    env: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    health_check: HealthCheck = field(default_factory=HealthCheck)
    start_timeout_s: float = 60.0
    placement_tags: list[str] = field(default_factory=list)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    privileged: bool = False
    annotation: str = ""
    modification_index: int = 0
    created_at: float = 0.0

    _nested = {"health_check": HealthCheck, "restart_policy": RestartPolicy}

    def validate(self) -> None:
        """Raise InvalidInput naming the first bad field."""
        check_guid("process_guid", self.process_guid)
        check_guid("domain", self.domain)
        if "@sha256:" not in self.image:
            raise InvalidInput(f"image {self.image!r} is not pinned by digest (stage it first)")
        if not self.command or not all(isinstance(a, str) for a in self.command):
            raise InvalidInput("command must be a non-empty list of strings")
        for name in ("instances", "memory_mb", "disk_mb", "max_pids"):
            check_count(name, getattr(self, name))
        if not 1 <= self.cpu_weight <= 100:
            raise InvalidInput("cpu_weight must be between 1 and 100")
        if any(not isinstance(p, int) or not 0 < p < 65536 for p in self.ports):
            raise InvalidInput("ports must be TCP ports between 1 and 65535")
        if self.health_check.kind not in ("process", "tcp", "http", "none"):
            raise InvalidInput("health_check.kind must be process, tcp, http or none")
        if self.health_check.kind in ("tcp", "http") and not (self.health_check.port or self.ports):
            raise InvalidInput(f"a {self.health_check.kind} health check needs a port")


@dataclass
class ActualLRP(_Json):
    process_guid: str
    index: int
    domain: str = DEFAULT_DOMAIN
    presence: Presence = Presence.ORDINARY
    state: ActualState = ActualState.UNCLAIMED
    instance_guid: str = ""
    cell_id: str = ""
    net_info: NetInfo = field(default_factory=NetInfo)
    crash_count: int = 0
    crash_reason: str = ""
    placement_error: str = ""
    since: float = 0.0
    modification_index: int = 0

    _nested = {"net_info": NetInfo}

    def __post_init__(self) -> None:
        self.state = ActualState(self.state)
        self.presence = Presence(self.presence)

    @property
    def key(self) -> tuple[str, int, Presence]:
        return (self.process_guid, self.index, self.presence)

    def allows(self, to: ActualState, instance_guid: str, cell_id: str) -> bool:
        """Diego's AllowsTransitionTo for a move to `to` held by (instance_guid, cell_id)."""
        rule = _ACTUAL_TRANSITIONS.get((self.state, to), "illegal")
        if rule == "illegal":
            return False
        if rule is True:
            return (instance_guid, cell_id) == (self.instance_guid, self.cell_id)
        if rule is False:
            return not instance_guid
        return True


@dataclass
class Task(_Json):
    task_guid: str
    image: str
    command: list[str]
    domain: str = DEFAULT_DOMAIN
    memory_mb: int = 128
    disk_mb: int = 0
    max_pids: int = 0
    cpu_weight: int = 100
    env: dict[str, str] = field(default_factory=dict)
    placement_tags: list[str] = field(default_factory=list)
    privileged: bool = False
    result_file: str = ""  # first 10 KB of this file in the container becomes `result`
    completion_callback_url: str = ""
    annotation: str = ""
    state: TaskState = TaskState.PENDING
    cell_id: str = ""
    result: str = ""
    failed: bool = False
    failure_reason: str = ""
    rejection_count: int = 0
    rejection_reason: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    first_completed_at: float = 0.0
    modification_index: int = 0

    def __post_init__(self) -> None:
        self.state = TaskState(self.state)

    def validate(self) -> None:
        check_guid("task_guid", self.task_guid)
        check_guid("domain", self.domain)
        if "@sha256:" not in self.image:
            raise InvalidInput(f"image {self.image!r} is not pinned by digest (stage it first)")
        if not self.command or not all(isinstance(a, str) for a in self.command):
            raise InvalidInput("command must be a non-empty list of strings")
        for name in ("memory_mb", "disk_mb", "max_pids"):
            check_count(name, getattr(self, name))
        if self.completion_callback_url and not self.completion_callback_url.startswith(("http://", "https://")):
            raise InvalidInput("completion_callback_url must be an http(s) URL")

    def allows(self, to: TaskState) -> bool:
        return (self.state, to) in _TASK_TRANSITIONS


@dataclass
class Resources(_Json):
    memory_mb: int = 0
    disk_mb: int = 0
    containers: int = 0


@dataclass
class CellPresence(_Json):
    """What a rep registers every few seconds (Diego's Locket presence value)."""

    cell_id: str
    rep_url: str  # where the brain reaches the rep: GET /state, POST /work, stop/cancel
    address: str = "127.0.0.1"  # where the cell's host ports are reachable
    zone: str = "z1"
    capacity: Resources = field(default_factory=Resources)
    placement_tags: list[str] = field(default_factory=list)
    optional_placement_tags: list[str] = field(default_factory=list)

    _nested = {"capacity": Resources}


def check_guid(name: str, value: object) -> None:
    if not isinstance(value, str) or not GUID_RE.match(value):
        raise InvalidInput(f"{name} must be 1-128 characters of letters, digits, '_' or '-'")


def check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{name} must be a whole number ≥ 0")
