"""The services a container needs (helper, cgroups, rootfs provider, networker, depot), in one place."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from dataclasses import dataclass, field

from garden.engine.depot import Depot
from garden.errors import GardenError
from garden.linux import channel
from garden.linux.cgroups import Cgroups
from garden.linux.helper import Helper
from garden.models import BIND_MOUNT_RW, ORIGIN_CONTAINER, BindMount
from images.provider import RootfsProvider
from netns.networker import Networker

KILL_WAIT_SECONDS = 10.0
PEA_SEPARATOR = "--pea-"  # a pea's rootfs and cgroup are named <container handle>--pea-<id>


def mount_config(bind_mounts: list[BindMount]) -> list[dict]:
    """Bind mounts as the helper's mount code takes them."""
    return [{"src": m.src_path, "dst": m.dst_path, "ro": m.mode != BIND_MOUNT_RW,
             "from_container": m.origin == ORIGIN_CONTAINER} for m in bind_mounts]


@dataclass
class Runtime:
    helper: Helper
    cgroups: Cgroups
    rootfs: RootfsProvider
    network: Networker | None
    depot: Depot
    init_binary: str
    no_new_privileges: bool = False  # set no_new_privs on every container process (gdn --no-new-privileges)
    _pea_removals: dict[str, asyncio.Future] = field(default_factory=dict, repr=False)

    async def launch(self, op: str, request: dict, fds: list[int] = ()) -> socket.socket:
        """Start a helper child for `op`; returns the daemon's end of its status socket.

        The child gets `fds` (closed here once handed over) after its own status socket.
        """
        ours, theirs = channel.pair()
        ours.setblocking(False)
        try:
            await self.helper.spawn(op, dict(request, no_new_privs=self.no_new_privileges), [theirs.fileno(), *fds])
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            for fd in fds:
                os.close(fd)
        return ours

    async def kill_cgroup(self, name: str) -> None:
        """SIGKILL every process in cgroup `name` until it is empty (zombies leave it when they exit)."""
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while pids := self.cgroups.pids(name):
            if time.monotonic() > deadline:
                raise GardenError(f"processes {pids} in cgroup {name} did not die")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            await asyncio.sleep(0.002)

    async def remove_pea(self, name: str) -> None:
        """Kill what is left in a pea's own cgroup, remove the cgroup and the pea's rootfs. Idempotent.

        The pea's exit and its container's destroy may both ask at once: the second waits for the first.
        """
        if name not in self._pea_removals:
            self._pea_removals[name] = task = asyncio.ensure_future(self._remove_pea(name))
            task.add_done_callback(lambda _: self._pea_removals.pop(name, None))
        await asyncio.shield(self._pea_removals[name])

    async def _remove_pea(self, name: str) -> None:
        await self.kill_cgroup(name)
        self.cgroups.destroy(name)
        await self.rootfs.destroy(name)
