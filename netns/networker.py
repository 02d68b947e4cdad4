"""The interface the garden engine uses for container networking (like Guardian's kawasaki)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

# Protocols of a net_out rule, numbered as on the Garden wire.
PROTOCOL_ALL, PROTOCOL_TCP, PROTOCOL_UDP, PROTOCOL_ICMP, PROTOCOL_ICMPV6 = range(5)


class NetworkError(Exception):
    """Networking for a container could not be set up or bad network input; the message says why.

    The engine answers it as a plain Garden error (envelope Type "", HTTP 500), as guardian does kawasaki's.
    """


@dataclass
class PortRange:
    start: int = 0
    end: int = 0


@dataclass
class IPRange:
    start: str = ""
    end: str = ""


@dataclass
class ICMPControl:
    type: int = 0
    code: int | None = None


@dataclass
class NetOutRule:
    """One egress rule: what a container may reach (Garden's NetOutRule)."""

    protocol: int = PROTOCOL_ALL
    networks: list[IPRange] = field(default_factory=list)
    ports: list[PortRange] = field(default_factory=list)
    icmps: ICMPControl | None = None
    log: bool = False


@dataclass
class NetIn:
    """One port mapping: host port -> container port."""

    host_port: int = 0
    container_port: int = 0


@dataclass
class NetworkStat:
    """Bytes a container received and sent."""

    rx_bytes: int = 0
    tx_bytes: int = 0


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
