"""One container on the daemon side: its state, properties, processes, grace timer and file streams."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict

from garden.backend import Container
from garden.engine.depot import PROCESSES_DIR
from garden.engine.grace import GraceTimer
from garden.engine.process import LinuxProcess, close_fds, make_pipes
from garden.engine.runtime import PEA_SEPARATOR, Runtime, mount_config
from garden.errors import GardenError, ProcessNotFoundError
from garden.linux import channel
from garden.models import (
    BandwidthLimits,
    ContainerInfo,
    CPULimits,
    DiskLimits,
    Limits,
    MemoryLimits,
    Metrics,
    NetOutRule,
    PidLimits,
    PortMapping,
    ProcessSpec,
)
from images.provider import ImageError, RootfsRequest
from netns.networker import NetworkConfig, NetworkError

STOP_TERM_ROUNDS = 10
CHUNK = 1 << 20


def limits_from_dict(data: dict) -> Limits:
    return Limits(
        bandwidth=BandwidthLimits(**data.get("bandwidth", {})),
        cpu=CPULimits(**data.get("cpu", {})),
        disk=DiskLimits(**data.get("disk", {})),
        memory=MemoryLimits(**data.get("memory", {})),
        pid=PidLimits(**data.get("pid", {})),
    )


@contextlib.contextmanager
def network_errors() -> Iterator[None]:
    """The networker's errors reach Garden clients as plain Garden errors (envelope Type "", HTTP 500)."""
    try:
        yield
    except NetworkError as e:
        raise GardenError(str(e)) from e


class LinuxContainer(Container):
    def __init__(self, runtime: Runtime, state: dict, on_grace_expired: Callable[[str], None]):
        self.handle = state["handle"]
        self.runtime = runtime
        self.state = state
        self.processes: dict[str, LinuxProcess] = {}
        self._starting: set[str] = set()
        self.peas: dict[str, str] = {}  # process id → the pea's rootfs (and own cgroup) name
        self.destroying = False
        self.grace = GraceTimer(state["grace_time_ns"], lambda: on_grace_expired(self.handle))

    # --- bookkeeping -------------------------------------------------------------------------

    def save(self) -> None:
        self.runtime.depot.save(self.handle, self.state)

    @property
    def init_pid(self) -> int:
        return self.state["init_pid"]

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.grace.hold()
        try:
            yield
        finally:
            self.grace.release()

    # --- info and metrics --------------------------------------------------------------------

    async def info(self) -> ContainerInfo:
        net = self.state.get("network") or {}
        stats = self.runtime.cgroups.stats(self.handle)
        return ContainerInfo(
            state=self.state["state"],
            events=["Out of memory"] if stats.oom_killed else [],
            host_ip=net.get("host_ip", ""),
            container_ip=net.get("container_ip", ""),
            external_ip=net.get("external_ip", ""),
            container_path=self.runtime.depot.path(self.handle),
            properties=dict(self.state["properties"]),
            mapped_ports=[PortMapping(p["host_port"], p["container_port"]) for p in net.get("mapped_ports", [])],
        )

    async def metrics(self) -> Metrics:
        return await self._metrics(self.handle, self.handle)

    async def pea_metrics(self, process_id: str) -> Metrics:
        """A pea's: its own cgroup when it overrides the limits, else the container's; its rootfs's disk."""
        name = self.peas[process_id]
        return await self._metrics(name if name in self.runtime.cgroups.names() else self.handle, name)

    async def _metrics(self, cgroup: str, rootfs: str) -> Metrics:
        stats = self.runtime.cgroups.stats(cgroup)
        disk = await self.runtime.rootfs.disk_stat(rootfs)
        with network_errors():
            network = await self.runtime.network.stat(self.handle) if self.runtime.network else None
        age_ns = int((time.time() - self.state["created_at"]) * 1e9)
        shares = self.runtime.cgroups.cpu_shares(self.handle)
        return Metrics(memory=stats.memory, cpu=stats.cpu, disk=disk, network=network, pids=stats.pids,
                       age_ns=age_ns, cpu_entitlement=int(shares * age_ns / 1024))

    def current_limits(self) -> Limits:
        limits = limits_from_dict(self.state["limits"])
        limits.memory = MemoryLimits(self.runtime.cgroups.memory_limit(self.handle))
        limits.cpu = CPULimits(limit_in_shares=self.runtime.cgroups.cpu_shares(self.handle))
        return limits

    # --- properties and grace time -----------------------------------------------------------

    def properties(self) -> dict[str, str]:
        return dict(self.state["properties"])

    def property(self, key: str) -> str:
        try:
            return self.state["properties"][key]
        except KeyError:
            raise GardenError(f"property does not exist: {key}") from None

    def set_property(self, key: str, value: str) -> None:
        self.state["properties"][key] = value
        self.save()

    def remove_property(self, key: str) -> None:
        if self.state["properties"].pop(key, None) is not None:
            self.save()

    def set_grace_time(self, ns: int) -> None:
        self.state["grace_time_ns"] = ns
        self.state["properties"]["garden.grace-time"] = str(ns)
        self.save()
        self.grace.reset(ns)

    # --- networking --------------------------------------------------------------------------

    def _networker(self):
        if self.runtime.network is None:
            raise GardenError("networking is not configured on this daemon")
        return self.runtime.network

    def set_mapped_ports(self, config: NetworkConfig) -> None:
        """Record the network config, with the port mappings as Guardian's property too."""
        self.state["network"] = asdict(config)
        ports = [{"HostPort": p.host_port, "ContainerPort": p.container_port} for p in config.mapped_ports]
        self.state["properties"]["garden.network.mapped-ports"] = json.dumps(ports, separators=(",", ":"))

    async def net_in(self, host_port: int, container_port: int) -> tuple[int, int]:
        with network_errors():
            result = await self._networker().net_in(self.handle, host_port, container_port)
            self.set_mapped_ports(self._networker().config(self.handle))
        self.save()
        return result

    async def net_out(self, rules: list[NetOutRule]) -> None:
        with network_errors():
            await self._networker().net_out(self.handle, rules)

    # --- processes ---------------------------------------------------------------------------

    def _forget(self, process: LinuxProcess) -> None:
        if self.processes.get(process.id) is process:
            del self.processes[process.id]

    async def run(self, spec: ProcessSpec) -> LinuxProcess:
        if spec.bind_mounts and not spec.image.uri:
            raise GardenError("bind mounts are only supported for processes with an image")
        if not spec.path:
            raise GardenError("process path is required")
        process_id = spec.id or str(uuid.uuid4())
        if process_id in self.processes or process_id in self._starting:
            raise GardenError(f"process ID '{process_id}' already in use")
        request = {
            "init_pid": self.init_pid, "userns": self.state["userns"],
            "cgroup_procs": self.runtime.cgroups.procs_files(self.handle),
            "home_cgroup_procs": self.runtime.cgroups.home_procs_files(),
            "user": spec.user, "env": self.state["env"] + spec.env, "path": spec.path, "args": spec.args,
            "dir": spec.dir, "rlimits": spec.rlimits, "tty": None,
        }
        if spec.tty is not None:
            size = spec.tty.window_size
            request["tty"] = {"columns": size.columns if size else 0, "rows": size.rows if size else 0}
        self._starting.add(process_id)
        try:
            if spec.image.uri:
                process = await self._run_pea(process_id, spec, request)
            else:
                request.update(id=process_id, attach_socket=self._attach_socket(process_id))
                process = await self._start("process", process_id, request)
                self._unlink_after_exit(process, request["attach_socket"])
        finally:
            self._starting.discard(process_id)
        self.processes[process_id] = process
        return process

    def _attach_socket(self, process_id: str) -> str:
        """Where the process's shim listens for a restarted daemon (process ids may hold any character)."""
        name = hashlib.sha256(process_id.encode()).hexdigest()[:24] + ".sock"
        return os.path.join(self.runtime.depot.path(self.handle), PROCESSES_DIR, name)

    def _unlink_after_exit(self, process: LinuxProcess, attach_socket: str) -> None:
        async def unlink() -> None:
            with contextlib.suppress(GardenError):
                await process.wait()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(attach_socket)

        asyncio.get_running_loop().create_task(unlink())

    async def adopt_processes(self) -> None:
        """After a daemon restart: take over the processes still running (Attach works again).

        Each running process's shim listens on a socket in the depot; one that cannot be reached is gone.
        """
        directory = os.path.join(self.runtime.depot.path(self.handle), PROCESSES_DIR)
        os.makedirs(directory, mode=0o700, exist_ok=True)  # a depot written before processes were adoptable
        for entry in os.scandir(directory):
            status = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                with channel.short_path(entry.path) as short:
                    status.connect(short)
                status.setblocking(False)
                process = await LinuxProcess.adopt(status, self._forget)
            except (OSError, GardenError):  # it exited while no daemon ran
                status.close()
                os.unlink(entry.path)
                continue
            self.processes[process.id] = process
            self._unlink_after_exit(process, entry.path)

    async def _start(self, op: str, process_id: str, request: dict) -> LinuxProcess:
        child_fds, (stdin_w, stdout_r, stderr_r) = make_pipes(request["tty"] is not None)
        try:
            status = await self.runtime.launch(op, request, child_fds)
        except BaseException:
            close_fds(stdin_w, stdout_r, stderr_r)
            raise
        process = LinuxProcess(process_id, status, self._forget)
        await process.start(stdin_w, stdout_r, stderr_r)
        return process

    async def _run_pea(self, process_id: str, spec: ProcessSpec, request: dict) -> LinuxProcess:
        """A process in its own rootfs (and cgroup when it overrides the limits), sharing the other namespaces."""
        rt = self.runtime
        name = f"{self.handle}{PEA_SEPARATOR}{uuid.uuid4().hex[:12]}"
        try:
            rootfs = await rt.rootfs.create(RootfsRequest(
                handle=name, uri=spec.image.uri, username=spec.image.username, password=spec.image.password,
                privileged=self.state["privileged"]))
            if spec.override_limits is not None:
                rt.cgroups.create(name, Limits(cpu=spec.override_limits.cpu, memory=spec.override_limits.memory))
                request["cgroup_procs"] = rt.cgroups.procs_files(name)
            request.update(
                rootfs=rootfs.path, env=rootfs.config.env + spec.env, bind_mounts=mount_config(spec.bind_mounts),
                privileged=self.state["privileged"], init=rt.init_binary,
                etc_dir=os.path.join(rt.depot.path(self.handle), "etc"))
            process = await self._start("pea", process_id, request)
        except BaseException as e:
            await rt.remove_pea(name)
            if isinstance(e, (ImageError, OSError)):
                raise GardenError(f"pea {process_id}: {e}") from e
            raise

        self.peas[process_id] = name

        async def clean_up_after_exit() -> None:
            with contextlib.suppress(GardenError):
                await process.wait()
            self.peas.pop(process_id, None)
            await rt.remove_pea(name)

        asyncio.get_running_loop().create_task(clean_up_after_exit())
        return process

    def attach(self, process_id: str) -> LinuxProcess:
        try:
            return self.processes[process_id]
        except KeyError:
            raise ProcessNotFoundError(process_id) from None

    # --- stop --------------------------------------------------------------------------------

    def _member_pids(self) -> list[int]:
        return [p for p in self.runtime.cgroups.pids(self.handle) if p != self.init_pid]

    async def stop(self, kill: bool) -> None:
        if not kill:  # as Guardian: SIGTERM every second (also reaching processes forked since), 10 times
            loop = asyncio.get_running_loop()
            for _ in range(STOP_TERM_ROUNDS):
                for pid in self._member_pids():
                    _signal(pid, signal.SIGTERM)
                next_round = loop.time() + 1.0
                while self._member_pids() and loop.time() < next_round:
                    await asyncio.sleep(0.02)
                if not self._member_pids():
                    break
        while pids := self._member_pids():
            for pid in pids:
                _signal(pid, signal.SIGKILL)
            await asyncio.sleep(0.01)
        self.state["state"] = "stopped"
        self.save()

    # --- files -------------------------------------------------------------------------------

    def _stream_request(self, user: str, **paths: str) -> dict:
        return {"init_pid": self.init_pid, "userns": self.state["userns"], "user": user, **paths}

    async def stream_in(self, user: str, destination: str, body: AsyncIterator[bytes]) -> None:
        read_end, write_end = os.pipe()
        status = await self.runtime.launch("stream_in", self._stream_request(user, destination=destination),
                                           [read_end])
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.connect_write_pipe(_DrainProtocol, os.fdopen(write_end, "wb", 0))
        try:
            async for chunk in body:
                if transport.is_closing():
                    break  # the extractor died; its status says why
                transport.write(chunk)
                await protocol.drain(transport)
        finally:
            transport.close()
        try:
            message, _ = await channel.recv_async(status)
        finally:
            status.close()
        if not message or "error" in message:
            cause = (message or {}).get("error", "the extractor exited without a report")
            raise GardenError(f"error streaming in: {cause}")  # Guardian's wording, which clients match

    async def stream_out(self, user: str, source: str) -> AsyncIterator[bytes]:
        read_end, write_end = os.pipe()
        status = await self.runtime.launch("stream_out", self._stream_request(user, source=source), [write_end])
        try:
            message, _ = await channel.recv_async(status)
            if not message or "error" in message:
                os.close(read_end)
                raise GardenError((message or {}).get("error", "stream out: archiver exited without a report"))
            with os.fdopen(read_end, "rb", 0) as pipe:
                loop = asyncio.get_running_loop()
                reader = asyncio.StreamReader(limit=CHUNK)
                await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
                while chunk := await reader.read(CHUNK):
                    yield chunk
            message, _ = await channel.recv_async(status)
            if message and "error" in message:
                raise GardenError(message["error"])
        finally:
            status.close()


class _DrainProtocol(asyncio.Protocol):
    """Write-pipe protocol with flow control (a pipe writer has no StreamWriter in asyncio)."""

    def __init__(self) -> None:
        self._resume: asyncio.Future | None = None

    def pause_writing(self) -> None:
        self._resume = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.resume_writing()

    async def drain(self, transport: asyncio.WriteTransport) -> None:
        if self._resume is not None and not transport.is_closing():
            await self._resume
            self._resume = None


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
