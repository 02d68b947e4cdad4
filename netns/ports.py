"""Host port pool for net_in (guardian's --port-pool-start/--port-pool-size)."""

from __future__ import annotations

from netns.networker import NetworkError


class PortPool:
    """Hands out host ports round-robin so a freed port is not reused at once. Not thread-safe."""

    def __init__(self, start: int, size: int):
        if not (0 < start and size > 0 and start + size - 1 <= 65535):
            raise NetworkError(f"invalid port pool {start}+{size}")
        self.start, self.size = start, size
        self._taken: set[int] = set()
        self._next = 0

    def acquire(self) -> int:
        """A free port from the pool."""
        for i in range(self.size):
            port = self.start + (self._next + i) % self.size
            if port not in self._taken:
                self._taken.add(port)
                self._next = (port - self.start + 1) % self.size
                return port
        raise NetworkError("insufficient ports remaining in the pool")

    def reserve(self, port: int) -> None:
        """Mark a given host port as taken (explicit net_in or restore)."""
        if not 0 < port <= 65535:
            raise NetworkError(f"invalid host port {port}")
        if port in self._taken:
            raise NetworkError(f"port {port} is already acquired")
        self._taken.add(port)

    def release(self, port: int) -> None:
        self._taken.discard(port)
