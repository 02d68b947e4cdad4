"""The interface the garden engine uses for container networking (like Guardian's kawasaki)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from garden.errors import GardenError
from garden.models import NetIn, NetOutRule, NetworkStat


class NetworkError(GardenError):
    """Networking for a container could not be set up or bad network input; the message says why.

    A plain Garden error on the wire (envelope Type "", HTTP 500), as guardian's kawasaki errors are.
    """


@dataclass
class NetworkConfig:
    """Addresses of one container, persisted by the engine and given back on restore."""

    host_ip: str = ""  # host side of the veth / gateway
    container_ip: str = ""
    subnet: str = ""  # CIDR the container lives in
    external_ip: str = ""
    mapped_ports: list[NetIn] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # implementation-private state


class Networker(ABC):
    @abstractmethod
    async def setup(self, handle: str, init_pid: int, network: str) -> NetworkConfig:
        """Give the netns of `init_pid` an address from `network` ("" = pool). Undoes itself on failure."""

    @abstractmethod
    async def teardown(self, handle: str) -> None:
        """Remove exactly what setup/net_in/net_out made for `handle`. Idempotent."""

    @abstractmethod
    async def net_in(self, handle: str, host_port: int, container_port: int) -> tuple[int, int]: ...

    @abstractmethod
    async def net_out(self, handle: str, rules: list[NetOutRule]) -> None: ...

    @abstractmethod
    def config(self, handle: str) -> NetworkConfig: ...

    @abstractmethod
    async def restore(self, configs: dict[str, NetworkConfig]) -> None:
        """After a daemon restart: rebuild pools from surviving containers' configs."""

    def capacity(self) -> int:
        """How many more containers can get a network (0 = no limit from networking)."""
        return 0

    async def stat(self, handle: str) -> NetworkStat | None:
        return None

    def resolv_conf(self) -> str:
        """Contents for the container's /etc/resolv.conf."""
        return ""

    async def close(self) -> None:
        """At daemon shutdown: finish background cleanup, release threads and helpers (kernel state stays)."""
        return None
