"""Grace time ("bomberman"): destroy a container when nobody has used it for its grace time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class GraceTimer:
    """Counts down from the full grace time whenever no request holds the container; 0 = never."""

    def __init__(self, grace_ns: int, on_expire: Callable[[], None]):
        self.grace_ns = grace_ns
        self._on_expire = on_expire
        self._holds = 0
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.cancel()
        if self.grace_ns > 0 and self._holds == 0:
            self._timer = asyncio.get_running_loop().call_later(self.grace_ns / 1e9, self._on_expire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def hold(self) -> None:
        self._holds += 1
        self.cancel()

    def release(self) -> None:
        self._holds -= 1
        if self._holds == 0:
            self.start()

    def reset(self, grace_ns: int) -> None:
        self.grace_ns = grace_ns
        if self._holds == 0:
            self.start()
