"""LinuxBackend: creates, finds, lists and destroys containers; restores them after a restart."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from garden.backend import Backend
from garden.engine.container import LinuxContainer
from garden.engine.runtime import PEA_SEPARATOR, Runtime, mount_config
from garden.errors import ContainerNotFoundError, GardenError
from garden.linux import channel
from garden.models import Capacity, ContainerSpec, Metrics
from images.provider import ImageError, RootfsRequest
from netns.networker import NetworkConfig, NetworkError

log = logging.getLogger("trellis.garden")
MAX_HANDLE_LENGTH = 200
HOSTNAME_LENGTH = 49


def _start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (field 22 of /proc/pid/stat), to tell a pid from its reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _validate_handle(handle: str) -> None:
    if "/" in handle or "\0" in handle or handle in (".", "..") or len(handle) > MAX_HANDLE_LENGTH:
        raise GardenError(f"invalid handle {handle!r}: no '/', not '.' or '..', at most {MAX_HANDLE_LENGTH} bytes")


def _hosts_file(hostname: str, ip: str) -> str:
    return f"127.0.0.1 localhost\n{ip or '127.0.0.1'} {hostname}\n"


def _host_resolv_conf() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


class PhaseTimer:
    """Milliseconds per named phase, for the debug log."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._phases: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self._phases.append((name, (now - self._last) * 1000))
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {ms:.1f} ms" for name, ms in self._phases)


class LinuxBackend(Backend):
    def __init__(self, runtime: Runtime, default_grace_ns: int = 0, max_containers: int = 0):
        self.runtime = runtime
        self.default_grace_ns = default_grace_ns
        self.max_containers = max_containers
        self.containers: dict[str, LinuxContainer] = {}
        self._creating: set[str] = set()

    # --- lookups -----------------------------------------------------------------------------

    async def ping(self) -> None:
        return None

    async def capacity(self) -> Capacity:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
        st = os.statvfs(self.runtime.depot.root)
        disk = st.f_blocks * st.f_frsize
        limits = [self.max_containers] if self.max_containers else []
        if self.runtime.network is not None:
            limits.append(self.runtime.network.capacity())  # free subnets; 0 when the pool is full
        return Capacity(memory_in_bytes=mem_kb * 1024, disk_in_bytes=disk,
                        schedulable_disk_in_bytes=self.runtime.rootfs.capacity_bytes() or disk,
                        max_containers=min(limits) if limits else 0)

    def list(self, filters: dict[str, str]) -> list[str]:
        filters = dict(filters)
        if filters.get("garden.state") == "all":
            del filters["garden.state"]
        else:
            filters.setdefault("garden.state", "created")
        return [h for h, c in self.containers.items()
                if all(c.state["properties"].get(k) == v for k, v in filters.items())]

    def lookup(self, handle: str) -> LinuxContainer:
        try:
            return self.containers[handle]
        except KeyError:
            raise ContainerNotFoundError(handle) from None

    async def metrics(self, handle: str) -> Metrics:
        """A container's metrics, or a pea's (Guardian answers BulkMetrics for a pea's process id too)."""
        if handle in self.containers:
            return await self.containers[handle].metrics()
        for container in self.containers.values():
            if handle in container.peas:
                return await container.pea_metrics(handle)
        raise ContainerNotFoundError(handle)

    # --- create ------------------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        handle = spec.handle or str(uuid.uuid4())
        _validate_handle(handle)
        if handle in self.containers or handle in self._creating:
            raise GardenError(f"Handle '{handle}' already in use")
        if self.max_containers and len(self.containers) + len(self._creating) >= self.max_containers:
            raise GardenError("max containers reached")
        for m in spec.bind_mounts:
            if not m.src_path or not os.path.isabs(m.dst_path):
                raise GardenError(f"bind mount {m.src_path!r} → {m.dst_path!r}: "
                                  "needs a source and an absolute destination")
        self._creating.add(handle)
        undo: list[Callable[[], Awaitable[None] | None]] = []
        try:
            container = await self._build(handle, spec, undo)
        except BaseException as e:
            for step in reversed(undo):
                try:
                    result = step()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("cleanup after failed create of %s", handle)
            if isinstance(e, (ImageError, NetworkError, OSError)):
                raise GardenError(str(e)) from e
            raise
        finally:
            self._creating.discard(handle)
        self.containers[handle] = container
        container.grace.start()
        return handle

    async def _build(self, handle: str, spec: ContainerSpec, undo: list) -> LinuxContainer:
        rt = self.runtime
        phases = PhaseTimer()
        depot_dir = rt.depot.create(handle)
        undo.append(lambda: rt.depot.remove(handle))
        hostname = handle[-HOSTNAME_LENGTH:]
        etc_dir = os.path.join(depot_dir, "etc")
        request = RootfsRequest(handle=handle, uri=spec.image.uri or spec.rootfs, username=spec.image.username,
                                password=spec.image.password, disk_limits=spec.limits.disk,
                                privileged=spec.privileged)
        undo.append(lambda: rt.rootfs.destroy(handle))
        rootfs = await rt.rootfs.create(request)
        phases.mark("rootfs")
        self._write_etc(etc_dir, hostname, "", rt.network.resolv_conf() if rt.network else _host_resolv_conf())
        rt.cgroups.create(handle, spec.limits, spec.privileged)
        phases.mark("cgroups")
        undo.append(lambda: rt.cgroups.destroy(handle))
        undo.append(lambda: self._kill_container(handle))  # also reaps a launcher that failed half-way
        config = {
            "rootfs": rootfs.path, "hostname": hostname, "cgroup_procs": rt.cgroups.procs_files(handle),
            "userns": not spec.privileged, "privileged": spec.privileged, "init": rt.init_binary,
            "etc_dir": etc_dir,
            "bind_mounts": mount_config(spec.bind_mounts),
            "cgroup_views": {} if spec.privileged else rt.cgroups.container_views(handle),
        }
        status = await rt.launch("container", config)
        try:
            pid = await self._launcher_report(status, handle, "pid")
            network_setup = None
            if rt.network is not None:  # concurrently with pid 1 building the filesystem
                undo.append(lambda: rt.network.teardown(handle))
                network_setup = asyncio.ensure_future(rt.network.setup(handle, pid, spec.network))
            try:
                await self._launcher_report(status, handle, "ready")
            finally:
                if network_setup is not None:
                    await asyncio.wait([network_setup])  # settled before any undo tears it down
                    network_setup.exception()  # retrieved here; raised below if pid 1 came up
        finally:
            status.close()
        phases.mark("init")
        network = None
        if network_setup is not None:
            network = network_setup.result()
            self._write_etc(etc_dir, hostname, network.container_ip, None)
            for rule in spec.net_in:
                await rt.network.net_in(handle, rule.host_port, rule.container_port)
            if spec.net_out:
                await rt.network.net_out(handle, spec.net_out)
            network = rt.network.config(handle)
            phases.mark("network")
        grace_ns = spec.grace_time_ns or self.default_grace_ns
        state = {
            "handle": handle, "init_pid": pid, "init_start": _start_time(pid), "created_at": time.time(),
            "state": "active", "privileged": spec.privileged, "userns": not spec.privileged,
            "env": rootfs.config.env + spec.env, "limits": asdict(spec.limits), "grace_time_ns": grace_ns,
            "network": asdict(network) if network else None, "properties": dict(spec.properties),
        }
        container = LinuxContainer(rt, state, self._grace_expired)
        props = state["properties"]
        props["garden.grace-time"] = str(grace_ns)
        if network:
            props.update({"garden.network.container-ip": network.container_ip,
                          "garden.network.host-ip": network.host_ip,
                          "garden.network.external-ip": network.external_ip})
            container.set_mapped_ports(network)
        props["garden.state"] = "created"
        container.save()
        phases.mark("state")
        log.debug("created %s: %s", handle, phases)
        return container

    @staticmethod
    async def _launcher_report(status: socket.socket, handle: str, key: str) -> object:
        """The container launcher's next report, which must carry `key`."""
        message, _ = await channel.recv_async(status)
        if not message or key not in message:
            raise GardenError(f"create container {handle}: {(message or {}).get('error', 'launcher died')}")
        return message[key]

    @staticmethod
    def _write_etc(etc_dir: str, hostname: str, ip: str, resolv: str | None) -> None:
        """Write in place: the files are bind-mounted into the container, a rename would not show."""
        with open(os.path.join(etc_dir, "hosts"), "w") as f:
            f.write(_hosts_file(hostname, ip))
        if resolv is not None:
            with open(os.path.join(etc_dir, "resolv.conf"), "w") as f:
                f.write(resolv)

    # --- destroy -----------------------------------------------------------------------------

    async def _kill_container(self, handle: str, pid: int | None = None, start: int | None = None) -> None:
        """SIGKILL pid 1 (the kernel then kills the whole pid namespace) and wait for the cgroup to empty.

        With `start`, pid 1 is only killed while its start time still matches (the pid was not reused).
        """
        if pid and (start is None or _start_time(pid) == start):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        await self.runtime.kill_cgroup(handle)

    async def _teardown(self, handle: str, state: dict | None) -> None:
        rt = self.runtime
        phases = PhaseTimer()
        if state is not None:
            await self._kill_container(handle, state["init_pid"], state.get("init_start"))
        else:
            await self._kill_container(handle)
        phases.mark("kill")
        if rt.network is not None:
            await rt.network.teardown(handle)
            phases.mark("network")
        for pea in {n for n in rt.cgroups.names() + rt.rootfs.handles() if n.startswith(handle + PEA_SEPARATOR)}:
            await rt.remove_pea(pea)  # their processes died with the container's pid namespace
        rt.cgroups.destroy(handle)
        phases.mark("cgroups")
        await rt.rootfs.destroy(handle)
        phases.mark("rootfs")
        rt.depot.remove(handle)
        phases.mark("depot")
        log.debug("destroyed %s: %s", handle, phases)

    async def destroy(self, handle: str) -> None:
        container = self.lookup(handle)
        if container.destroying:
            raise GardenError("container already being destroyed")
        container.destroying = True
        container.grace.cancel()
        try:
            await self._teardown(handle, container.state)
        except Exception as e:
            container.destroying = False
            raise GardenError(f"destroy {handle}: {e}") from e
        self.containers.pop(handle, None)

    def _grace_expired(self, handle: str) -> None:
        container = self.containers.get(handle)
        if container is None or container.destroying:
            return

        async def reap() -> None:
            try:
                await self.destroy(handle)
            except GardenError as e:
                log.warning("grace time: could not destroy %s: %s", handle, e)

        asyncio.get_running_loop().create_task(reap())

    # --- restart -----------------------------------------------------------------------------

    async def restore(self) -> None:
        """Adopt every container whose pid 1 still runs; clean up the rest and anything half-made."""
        rt = self.runtime
        states, broken = rt.depot.load_all()
        for handle, state in states.items():
            if _start_time(state["init_pid"]) == state.get("init_start"):
                container = LinuxContainer(rt, state, self._grace_expired)
                self.containers[handle] = container
            else:
                broken.append(handle)
        if rt.network is not None:
            await rt.network.restore({h: NetworkConfig(**c.state["network"])
                                      for h, c in self.containers.items() if c.state.get("network")})
        leftovers = set(broken) | set(rt.cgroups.names()) | set(rt.rootfs.handles())
        for handle in sorted(leftovers - set(self.containers)):
            log.info("cleaning up leftovers of container %s", handle)
            try:
                await self._teardown(handle, None)
            except Exception:
                log.exception("could not clean up %s", handle)
        for container in self.containers.values():
            await container.adopt_processes()
            container.grace.start()

    async def shutdown(self) -> None:
        """Stop timers; containers keep running for the next daemon to adopt."""
        for container in self.containers.values():
            container.grace.cancel()
        if not self.containers:
            self.runtime.cgroups.remove_parents()
