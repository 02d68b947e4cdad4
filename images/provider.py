"""The interface the garden engine uses to get a container root filesystem.

Like Guardian's image plugin: "give me a rootfs for this ref with this disk limit", "release it",
"how much disk does it use". Implementations: `images.local` (directories and tarballs) and the
registry-backed store (docker:// and oci:// references).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

# How disk limits count: the whole root (layers included) or only what the container wrote.
DISK_SCOPE_TOTAL = 0
DISK_SCOPE_EXCLUSIVE = 1


class ImageError(Exception):
    """A rootfs could not be made; the message names the image and the cause."""


@dataclass
class DiskLimits:
    inode_soft: int = 0
    inode_hard: int = 0
    byte_soft: int = 0
    byte_hard: int = 0
    scope: int = DISK_SCOPE_TOTAL


@dataclass
class DiskStat:
    total_bytes_used: int = 0
    total_inodes_used: int = 0
    exclusive_bytes_used: int = 0
    exclusive_inodes_used: int = 0


@dataclass
class ImageConfig:
    """What the image's config says about processes (Docker/OCI `config`)."""

    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


@dataclass
class Rootfs:
    path: str  # a mounted, writable root (overlay merged dir) owned by the provider
    config: ImageConfig = field(default_factory=ImageConfig)


@dataclass
class RootfsRequest:
    handle: str  # unique id of the consumer (container handle, or handle + pea id)
    uri: str  # "" = default rootfs; a path; docker://…; oci://…
    username: str = ""  # used for this pull only; never stored or logged
    password: str = ""
    disk_limits: DiskLimits = field(default_factory=DiskLimits)
    privileged: bool = False


class RootfsProvider(ABC):
    @abstractmethod
    async def create(self, request: RootfsRequest) -> Rootfs:
        """Make and mount a root for `request.handle`. On failure leaves nothing behind."""

    @abstractmethod
    async def destroy(self, handle: str) -> None:
        """Unmount and delete what create made for `handle`. Idempotent."""

    @abstractmethod
    async def disk_stat(self, handle: str) -> DiskStat: ...

    @abstractmethod
    def handles(self) -> list[str]:
        """Handles with a root on disk (for cleaning up after a crash)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release sessions and background work at daemon shutdown (containers stay mounted)."""

    def capacity_bytes(self) -> int:
        """Disk the store can hand out (Capacity.schedulable_disk_in_bytes); 0 = unknown."""
        return 0
