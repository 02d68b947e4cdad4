"""The services a container needs (helper, cgroups, rootfs provider, networker, depot), in one place."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from garden.engine.depot import Depot
from garden.linux import channel
from garden.linux.cgroups import Cgroups
from garden.linux.helper import Helper
from images.provider import RootfsProvider
from netns.networker import Networker


@dataclass
class Runtime:
    helper: Helper
    cgroups: Cgroups
    rootfs: RootfsProvider
    network: Networker | None
    depot: Depot
    init_binary: str
    no_new_privileges: bool = False  # set no_new_privs on every container process (gdn --no-new-privileges)

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

