"""Garden wire codec: the one place that maps `garden.models` to the exact JSON keys and back.

Used by the server (garden/api) and the client (garden/client.py). Encoding follows Go's
`encoding/json` (struct field order, `omitempty`, nested structs never omitted, map keys sorted,
`<>&` escaped, trailing newline). Decoding follows Go too: keys match case-insensitively, unknown
keys are ignored, `null` leaves the default, only the first JSON value is read, and a wrong type or
malformed text raises `BadRequestError` with Go's message.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from garden import errors, models

# ---------------------------------------------------------------------------------------------- kinds


class Kind:
    """How one Go type looks on the wire."""

    go_name = ""

    def zero(self, value: Any) -> bool:
        return not value

    def encode(self, value: Any) -> Any:
        return value

    def decode(self, value: Any, ctx: _Ctx) -> Any:
        raise NotImplementedError

    def empty(self) -> Any:
        """The Go zero value (what a top-level `null` decodes to)."""
        return self.decode(self.zero_json, _Ctx())

    zero_json: Any = None


class _Ctx:
    """Where we are while decoding (for Go-style error messages)."""

    __slots__ = ("struct", "path")

    def __init__(self, struct: str = "", path: tuple[str, ...] = ()):
        self.struct = struct
        self.path = path

    def fail(self, value: Any, kind: Kind) -> errors.BadRequestError:
        if isinstance(value, bool):
            what = "bool"
        elif isinstance(value, int | float):
            what = f"number {json.dumps(value)}"
        else:
            what = {str: "string", list: "array", dict: "object"}[type(value)]
        if self.path:
            where = f"Go struct field {self.struct}.{'.'.join(self.path)}"
        else:
            where = "Go value"
        return errors.BadRequestError(f"json: cannot unmarshal {what} into {where} of type {kind.go_name}")


class Int(Kind):
    zero_json = 0

    def __init__(self, go_name: str, bits: int, signed: bool = False):
        self.go_name = go_name
        self.lo = -(1 << (bits - 1)) if signed else 0
        self.hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    def decode(self, value: Any, ctx: _Ctx) -> int:
        if type(value) is not int or not self.lo <= value <= self.hi:
            raise ctx.fail(value, self)
        return value


class Str(Kind):
    go_name = "string"
    zero_json = ""

    def decode(self, value: Any, ctx: _Ctx) -> str:
        if type(value) is not str:
            raise ctx.fail(value, self)
        return value


class IP(Str):
    """net.IP: a dotted string; "" means unset."""

    go_name = "net.IP"

    def decode(self, value: Any, ctx: _Ctx) -> str:
        text = super().decode(value, ctx)
        if text:
            try:
                ipaddress.ip_address(text)
            except ValueError:
                raise errors.BadRequestError(f"invalid IP address: {text}") from None
        return text


class Bool(Kind):
    go_name = "bool"
    zero_json = False

    def decode(self, value: Any, ctx: _Ctx) -> bool:
        if type(value) is not bool:
            raise ctx.fail(value, self)
        return value


class List(Kind):
    zero_json: Any = []

    def __init__(self, item: Kind):
        self.item = item
        self.go_name = "[]" + item.go_name

    def encode(self, value: Any) -> Any:
        return [self.item.encode(v) for v in value]

    def decode(self, value: Any, ctx: _Ctx) -> list:
        if type(value) is not list:
            raise ctx.fail(value, self)
        return [self.item.empty() if v is None else self.item.decode(v, ctx) for v in value]


class Map(Kind):
    """map[string]T; Go sorts map keys when encoding."""

    zero_json: Any = {}

    def __init__(self, value: Kind):
        self.value = value
        self.go_name = "map[string]" + value.go_name

    def encode(self, value: Any) -> Any:
        return {k: self.value.encode(value[k]) for k in sorted(value)}

    def decode(self, value: Any, ctx: _Ctx) -> dict[str, Any]:
        if type(value) is not dict:
            raise ctx.fail(value, self)
        item = self.value
        return {k: item.empty() if v is None else item.decode(v, ctx) for k, v in value.items()}


class Ptr(Kind):
    """A Go pointer (or nil-able slice/map): Python None <-> absent / null."""

    def __init__(self, elem: Kind):
        self.elem = elem
        self.go_name = elem.go_name

    def zero(self, value: Any) -> bool:
        return value is None

    def empty(self) -> Any:
        return None

    def encode(self, value: Any) -> Any:
        return None if value is None else self.elem.encode(value)

    def decode(self, value: Any, ctx: _Ctx) -> Any:
        return self.elem.decode(value, ctx)


@dataclass(frozen=True)
class F:
    """One struct field: Python attribute, JSON key, kind, Go's omitempty."""

    attr: str
    key: str
    kind: Kind
    omitempty: bool = False


class Struct(Kind):
    """A Go struct <-> a dataclass. Nested structs are never "empty" (Go's omitempty ignores them)."""

    zero_json: Any = {}

    def __init__(self, cls: type, go_name: str, *fields_: F):
        self.cls = cls
        self.go_name = go_name
        self.fields = fields_
        self.by_key = {f.key.lower(): f for f in fields_}

    def zero(self, value: Any) -> bool:
        return False

    def encode(self, value: Any) -> dict:
        out = {}
        for f in self.fields:
            v = getattr(value, f.attr)
            if f.omitempty and f.kind.zero(v):
                continue
            out[f.key] = f.kind.encode(v)
        return out

    def decode(self, value: Any, ctx: _Ctx) -> Any:
        if type(value) is not dict:
            raise ctx.fail(value, self)
        kwargs = {}
        for key, v in value.items():
            f = self.by_key.get(key.lower())
            if f is None or v is None:
                continue
            kwargs[f.attr] = f.kind.decode(v, _Ctx(self.go_name.rpartition(".")[2], ctx.path + (f.key,)))
        return self.cls(**kwargs)


class FixedMap(Kind):
    """A Go struct whose fields are all one kind, modelled as a dict (rlimits, memory stats)."""

    zero_json: Any = {}

    def __init__(self, go_name: str, keys: tuple[str, ...], kind: Kind, fill: bool):
        self.go_name = go_name
        self.keys = keys
        self.by_key = {k.lower(): k for k in keys}
        self.kind = kind
        self.fill = fill  # True: every key always present (zero when missing); False: pointers

    def zero(self, value: Any) -> bool:
        return False

    def encode(self, value: Any) -> dict:
        if self.fill:
            return {k: value.get(k, 0) for k in self.keys}
        return {k: value[k] for k in self.keys if k in value}

    def decode(self, value: Any, ctx: _Ctx) -> dict[str, int]:
        if type(value) is not dict:
            raise ctx.fail(value, self)
        name = self.go_name.rpartition(".")[2]
        out = {}
        for key, v in value.items():
            k = self.by_key.get(key.lower())
            if k is not None and v is not None:
                out[k] = self.kind.decode(v, _Ctx(name, ctx.path + (k,)))
        return out


STR, IPS, BOOL = Str(), IP(), Bool()
U8, U16, U32, U64 = Int("uint8", 8), Int("uint16", 16), Int("uint32", 32), Int("uint64", 64)
INT, DURATION = Int("int", 64, signed=True), Int("time.Duration", 64, signed=True)
STRS = List(STR)
STR_MAP = Map(STR)

# ------------------------------------------------------------------------------------- wire-only types


@dataclass
class ProcessPayload:
    """One NDJSON message on a Run/Attach control connection (every field omitempty)."""

    process_id: str = ""
    stream_id: str = ""
    source: int | None = None
    data: str | None = None
    exit_status: int | None = None
    error: str | None = None
    tty: models.TTYSpec | None = None
    signal: int | None = None


@dataclass
class NetInRequest:
    handle: str = ""
    host_port: int = 0
    container_port: int = 0


@dataclass
class StopRequest:
    kill: bool = False


@dataclass
class PropertyValue:
    value: str = ""


@dataclass
class Envelope:
    type: str = ""
    message: str = ""
    handle: str = ""
    process_id: str = ""
    binary: str = ""


@dataclass
class Handles:
    handles: list[str]


@dataclass
class HandleResponse:
    handle: str = ""


@dataclass
class BulkEntry:
    """A BulkInfo/BulkMetrics entry: the value (zero value on error) and a plain error envelope."""

    value: Any = None
    err: Envelope | None = None


# ------------------------------------------------------------------------------------------- schemas


def _omit(cls: type, go_name: str, kinds: dict[str, Kind]) -> Struct:
    """A struct whose fields all carry omitempty and use the attribute name as key."""
    return Struct(cls, go_name, *(F(n, n, k, True) for n, k in kinds.items()))


IMAGE_REF = _omit(models.ImageRef, "garden.ImageRef", {"uri": STR, "username": STR, "password": STR})
BIND_MOUNT = _omit(models.BindMount, "garden.BindMount",
                   {"src_path": STR, "dst_path": STR, "mode": U8, "origin": U8})
BANDWIDTH_LIMITS = _omit(models.BandwidthLimits, "garden.BandwidthLimits", {"rate": U64, "burst": U64})
CPU_LIMITS = _omit(models.CPULimits, "garden.CPULimits", {"weight": U64, "limit_in_shares": U64})
DISK_LIMITS = _omit(models.DiskLimits, "garden.DiskLimits", {
    "inode_soft": U64, "inode_hard": U64, "byte_soft": U64, "byte_hard": U64, "scope": U8})
MEMORY_LIMITS = _omit(models.MemoryLimits, "garden.MemoryLimits", {"limit_in_bytes": U64})
PID_LIMITS = _omit(models.PidLimits, "garden.PidLimits", {"max": U64})
LIMITS = Struct(
    models.Limits, "garden.Limits",
    F("bandwidth", "bandwidth_limits", BANDWIDTH_LIMITS), F("cpu", "cpu_limits", CPU_LIMITS),
    F("disk", "disk_limits", DISK_LIMITS), F("memory", "memory_limits", MEMORY_LIMITS),
    F("pid", "pid_limits", PID_LIMITS),
)
PORT_RANGE = _omit(models.PortRange, "garden.PortRange", {"start": U16, "end": U16})
IP_RANGE = _omit(models.IPRange, "garden.IPRange", {"start": IPS, "end": IPS})
ICMP_CONTROL = _omit(models.ICMPControl, "garden.ICMPControl", {"type": U8, "code": Ptr(U8)})
NET_OUT_RULE = _omit(models.NetOutRule, "garden.NetOutRule", {
    "protocol": U8, "networks": List(IP_RANGE), "ports": List(PORT_RANGE),
    "icmps": Ptr(ICMP_CONTROL), "log": BOOL})
NET_OUT_RULES = List(NET_OUT_RULE)
NET_IN = Struct(models.NetIn, "garden.NetIn", F("host_port", "host_port", U32),
                F("container_port", "container_port", U32))
NET_IN_REQUEST = _omit(NetInRequest, "transport.NetInRequest",
                       {"handle": STR, "host_port": U32, "container_port": U32})
CONTAINER_SPEC = Struct(
    models.ContainerSpec, "garden.ContainerSpec",
    F("handle", "handle", STR, True), F("grace_time_ns", "grace_time", DURATION, True),
    F("rootfs", "rootfs", STR, True), F("image", "image", IMAGE_REF),
    F("bind_mounts", "bind_mounts", List(BIND_MOUNT), True), F("network", "network", STR, True),
    F("properties", "properties", STR_MAP, True), F("env", "env", STRS, True),
    F("privileged", "privileged", BOOL, True), F("limits", "limits", LIMITS),
    F("net_out", "netout_rules", NET_OUT_RULES, True), F("net_in", "netin", List(NET_IN), True),
)
WINDOW_SIZE = _omit(models.WindowSize, "garden.WindowSize", {"columns": U16, "rows": U16})
TTY_SPEC = _omit(models.TTYSpec, "garden.TTYSpec", {"window_size": Ptr(WINDOW_SIZE)})
PROCESS_LIMITS = Struct(models.ProcessLimits, "garden.ProcessLimits",
                        F("cpu", "cpu_limits", CPU_LIMITS), F("memory", "memory_limits", MEMORY_LIMITS))
RLIMITS = FixedMap("garden.ResourceLimits", models.RLIMIT_NAMES, U64, fill=False)
PROCESS_SPEC = Struct(
    models.ProcessSpec, "garden.ProcessSpec",
    F("id", "id", STR, True), F("path", "path", STR, True), F("args", "args", STRS, True),
    F("env", "env", STRS, True), F("dir", "dir", STR, True), F("user", "user", STR, True),
    F("rlimits", "rlimits", RLIMITS), F("override_limits", "limits", Ptr(PROCESS_LIMITS), True),
    F("tty", "tty", Ptr(TTY_SPEC), True), F("image", "image", IMAGE_REF),
    F("bind_mounts", "bind_mounts", List(BIND_MOUNT), True),
)
PROCESS_PAYLOAD = _omit(ProcessPayload, "transport.ProcessPayload", {
    "process_id": STR, "stream_id": STR, "source": Ptr(INT), "data": Ptr(STR), "exit_status": Ptr(INT),
    "error": Ptr(STR), "tty": Ptr(TTY_SPEC), "signal": Ptr(INT)})
CAPACITY = _omit(models.Capacity, "garden.Capacity", {
    "memory_in_bytes": U64, "disk_in_bytes": U64, "schedulable_disk_in_bytes": U64, "max_containers": U64})
PORT_MAPPING = Struct(models.PortMapping, "garden.PortMapping",
                      F("host_port", "HostPort", U32), F("container_port", "ContainerPort", U32))
CONTAINER_INFO = Struct(
    models.ContainerInfo, "garden.ContainerInfo",
    F("state", "State", STR), F("events", "Events", Ptr(STRS)), F("host_ip", "HostIP", STR),
    F("container_ip", "ContainerIP", STR), F("container_ipv6", "ContainerIPv6", STR),
    F("external_ip", "ExternalIP", STR), F("container_path", "ContainerPath", STR),
    F("process_ids", "ProcessIDs", Ptr(STRS)), F("properties", "Properties", Ptr(STR_MAP)),
    F("mapped_ports", "MappedPorts", Ptr(List(PORT_MAPPING))),
)
CPU_STAT = Struct(models.CPUStat, "garden.ContainerCPUStat",
                  F("usage", "Usage", U64), F("user", "User", U64), F("system", "System", U64))
DISK_STAT = Struct(
    models.DiskStat, "garden.ContainerDiskStat",
    F("total_bytes_used", "TotalBytesUsed", U64), F("total_inodes_used", "TotalInodesUsed", U64),
    F("exclusive_bytes_used", "ExclusiveBytesUsed", U64),
    F("exclusive_inodes_used", "ExclusiveInodesUsed", U64),
)
NETWORK_STAT = Struct(models.NetworkStat, "garden.ContainerNetworkStat",
                      F("rx_bytes", "RxBytes", U64), F("tx_bytes", "TxBytes", U64))
PID_STAT = Struct(models.PidStat, "garden.ContainerPidStat",
                  F("current", "Current", U64), F("max", "Max", U64))
MEMORY_STAT = FixedMap("garden.ContainerMemoryStat", models.MEMORY_STAT_KEYS, U64, fill=True)
METRICS = Struct(
    models.Metrics, "garden.Metrics",
    F("memory", "MemoryStat", MEMORY_STAT),
    F("cpu", "CPUStat", CPU_STAT), F("disk", "DiskStat", DISK_STAT),
    F("network", "NetworkStat", Ptr(NETWORK_STAT)), F("pids", "PidStat", PID_STAT),
    F("age_ns", "Age", DURATION), F("cpu_entitlement", "CPUEntitlement", U64),
)
STOP_REQUEST = Struct(StopRequest, "transport.StopRequest", F("kill", "kill", BOOL))
PROPERTY_VALUE = Struct(PropertyValue, "transport.PropertyValue", F("value", "value", STR))
ENVELOPE = Struct(
    Envelope, "garden.Error",
    F("type", "Type", STR), F("message", "Message", STR), F("handle", "Handle", STR),
    F("process_id", "ProcessID", STR), F("binary", "Binary", STR),
)
HANDLES = Struct(Handles, "transport.ListResponse", F("handles", "Handles", STRS))
HANDLE_RESPONSE = Struct(HandleResponse, "transport.CreateResponse", F("handle", "Handle", STR))
INFO_ENTRIES = Map(Struct(BulkEntry, "garden.ContainerInfoEntry",
                          F("value", "Info", CONTAINER_INFO), F("err", "Err", Ptr(ENVELOPE))))
METRICS_ENTRIES = Map(Struct(BulkEntry, "garden.ContainerMetricsEntry",
                             F("value", "Metrics", METRICS), F("err", "Err", Ptr(ENVELOPE))))

# ------------------------------------------------------------------------------------- text <-> values

_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
            ("\u2029", "\\u2029"))
EMPTY = b"{}\n"


def dumps(value: Any) -> bytes:
    """Plain JSON value -> Go json.Encoder bytes (compact, HTML-escaped, trailing newline)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, esc in _ESCAPES:
        if raw in text:
            text = text.replace(raw, esc)
    return (text + "\n").encode("utf-8", "replace")


def encode(kind: Kind, value: Any) -> bytes:
    """A model value -> wire bytes."""
    return dumps(kind.encode(value))


_DECODER = json.JSONDecoder(parse_constant=lambda c: _reject_constant(c))


def _reject_constant(name: str) -> None:
    raise errors.BadRequestError(f"invalid character '{name[0]}' looking for beginning of value")


def loads(data: bytes | str) -> Any:
    """The first JSON value of `data` (like Go's json.Decoder); Go's error text on failure."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise errors.BadRequestError("EOF")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise errors.BadRequestError(_go_syntax_message(text, exc)) from None
    return value


def decode(kind: Kind, data: bytes | str) -> Any:
    """Wire bytes -> a model value (BadRequestError on malformed text or wrong types)."""
    value = loads(data)
    return kind.empty() if value is None else kind.decode(value, _Ctx())


def _quote_char(c: str) -> str:
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    return "'" + json.dumps(c, ensure_ascii=False)[1:-1] + "'"


def _innermost_open(text: str, pos: int) -> str:
    """'{' or '[' enclosing `pos` (strings skipped), for Go's "after ..." messages."""
    stack, in_str, esc = [], False, False
    for c in text[:pos]:
        if in_str:
            esc, in_str = (False, True) if esc else (c == "\\", c != '"')
        elif c == '"':
            in_str = True
        elif c in "{[":
            stack.append(c)
        elif c in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _go_syntax_message(text: str, exc: json.JSONDecodeError) -> str:
    pos = exc.pos
    if pos >= len(text.rstrip(" \t\r\n")) or exc.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    c = _quote_char(text[pos])
    msg = exc.msg
    if msg.startswith("Expecting property name"):
        return f"invalid character {c} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {c} after object key"
    if msg.startswith("Expecting ','"):
        where = "object key:value pair" if _innermost_open(text, pos) == "{" else "array element"
        return f"invalid character {c} after {where}"
    if msg.startswith("Invalid control character"):
        return f"invalid character {c} in string literal"
    if msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\u"):
        return f"invalid character {c} in string escape code"
    return f"invalid character {c} looking for beginning of value"


# -------------------------------------------------------------------------------------------- errors

_ERROR_TYPES: dict[str, type[errors.GardenError]] = {
    cls.type_name: cls for cls in (
        errors.ExecutableNotFoundError, errors.ServiceUnavailableError, errors.UnrecoverableError)
}


def error_envelope(err: errors.GardenError) -> Envelope:
    """The five-key envelope for a handler error (Type, Message, Handle, ProcessID, Binary "")."""
    return Envelope(err.type_name, err.message, err.handle, err.process_id)


def generic_envelope(err: Exception) -> Envelope:
    """How guardian reports per-handle bulk failures: always a plain (Type "") error."""
    return Envelope("", err.message if isinstance(err, errors.GardenError) else str(err))


def envelope_error(env: Envelope) -> errors.GardenError:
    """The envelope as the matching garden.errors instance (like the Go client)."""
    if env.type == errors.ContainerNotFoundError.type_name:
        return errors.ContainerNotFoundError(env.handle)
    if env.type == errors.ProcessNotFoundError.type_name:
        return errors.ProcessNotFoundError(env.process_id)
    return _ERROR_TYPES.get(env.type, errors.GardenError)(env.message)
