"""The interface the HTTP layer (garden/api) calls; garden/engine implements it.

Nothing here touches the kernel or HTTP. Every method raises `garden.errors.GardenError`
subclasses for failures the client should see.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator

from garden.models import (
    Capacity,
    ContainerInfo,
    ContainerSpec,
    Limits,
    Metrics,
    NetOutRule,
    ProcessSpec,
)

STDOUT = 1
STDERR = 2


class OutputStream(ABC):
    """One attach's copy of a process's stdout and stderr (Garden's stream id)."""

    id: str

    @abstractmethod
    async def read(self, fd: int) -> bytes:
        """Next chunk of `fd` (STDOUT or STDERR); b"" once the process has exited and all is drained."""


class Process(ABC):
    id: str

    @abstractmethod
    def new_stream(self) -> OutputStream:
        """Register a new attach: output from now on is copied to it. Works after exit too."""

    @abstractmethod
    def stream(self, stream_id: str) -> OutputStream | None:
        """A stream made by new_stream, kept one minute after the process exits."""

    @abstractmethod
    async def write_stdin(self, data: bytes) -> None: ...

    @abstractmethod
    def close_stdin(self) -> None: ...

    @abstractmethod
    def signal(self, signal: int) -> None:
        """Garden signal: 0 = SIGTERM, 1 = SIGKILL."""

    @abstractmethod
    def resize(self, columns: int, rows: int) -> None: ...

    @abstractmethod
    async def wait(self) -> int:
        """Exit status (128+N when killed by signal N). Raises GardenError when waiting fails."""


class Container(ABC):
    handle: str

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Pause the grace-time countdown while the block runs (restarted in full afterwards)."""
        yield

    @abstractmethod
    async def info(self) -> ContainerInfo: ...

    @abstractmethod
    async def metrics(self) -> Metrics: ...

    @abstractmethod
    async def stop(self, kill: bool) -> None: ...

    @abstractmethod
    async def stream_in(self, user: str, destination: str, body: AsyncIterator[bytes]) -> None:
        """Extract an uncompressed tar stream at `destination` as `user`."""

    @abstractmethod
    def stream_out(self, user: str, source: str) -> AsyncIterator[bytes]:
        """A tar stream of `source` read as `user`. The first chunk may raise GardenError."""

    @abstractmethod
    def current_limits(self) -> Limits: ...

    @abstractmethod
    async def net_in(self, host_port: int, container_port: int) -> tuple[int, int]: ...

    @abstractmethod
    async def net_out(self, rules: list[NetOutRule]) -> None: ...

    @abstractmethod
    def properties(self) -> dict[str, str]: ...

    @abstractmethod
    def property(self, key: str) -> str:
        """Raises GardenError('property does not exist: <key>')."""

    @abstractmethod
    def set_property(self, key: str, value: str) -> None: ...

    @abstractmethod
    def remove_property(self, key: str) -> None: ...

    @abstractmethod
    def set_grace_time(self, ns: int) -> None: ...

    @abstractmethod
    async def run(self, spec: ProcessSpec) -> Process:
        """Start a process. Raises ExecutableNotFoundError before anything is streamed."""

    @abstractmethod
    def attach(self, process_id: str) -> Process:
        """Raises ProcessNotFoundError."""


class Backend(ABC):
    @abstractmethod
    async def ping(self) -> None: ...

    @abstractmethod
    async def capacity(self) -> Capacity: ...

    @abstractmethod
    async def create(self, spec: ContainerSpec) -> str:
        """Build a container; returns its handle. grace_time_ns 0 means the daemon default."""

    @abstractmethod
    async def destroy(self, handle: str) -> None: ...

    @abstractmethod
    def list(self, filters: dict[str, str]) -> list[str]:
        """Handles whose properties match every filter (plus implicit garden.state=created)."""

    @abstractmethod
    def lookup(self, handle: str) -> Container:
        """Raises ContainerNotFoundError."""

    async def metrics(self, handle: str) -> Metrics:
        """Metrics by handle for BulkMetrics (a backend may also know other handles there, e.g. peas)."""
        return await self.lookup(handle).metrics()
