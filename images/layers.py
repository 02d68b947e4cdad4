"""A content-addressed store of unpacked layers, keyed by chain id (`layers/<hex>/diff`).

A layer is made in `tmp/` and renamed into place only when complete, so a half-made layer is never
used. Concurrent requests for the same layer share one producer (single-flight). The store keeps each
layer's size in memory for the GC threshold and for "total" disk quotas.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from images.diskusage import usage


@dataclass
class LayerInfo:
    key: str  # hex chain id (or hex digest of a rootfs tarball)
    bytes: int
    inodes: int
    last_used: float


class LayerStore:
    def __init__(self, root: str) -> None:
        self.layers_dir = os.path.join(root, "layers")
        self.tmp_dir = os.path.join(root, "tmp")
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # leftovers of a crash are never complete layers
        os.makedirs(self.layers_dir, exist_ok=True)
        os.makedirs(self.tmp_dir, exist_ok=True)
        self._inflight: dict[str, asyncio.Task[LayerInfo]] = {}
        self.layers: dict[str, LayerInfo] = {}
        for key in os.listdir(self.layers_dir):
            try:
                with open(os.path.join(self.layers_dir, key, "meta.json")) as f:
                    meta = json.load(f)
                self.layers[key] = LayerInfo(key, meta["bytes"], meta["inodes"], meta["last_used"])
            except (OSError, ValueError, KeyError):  # not made by us: never hand it out
                shutil.rmtree(os.path.join(self.layers_dir, key), ignore_errors=True)
        self.unpacked = 0  # layers made by this process (for benchmarks and tests)

    def diff_dir(self, key: str) -> str:
        return os.path.join(self.layers_dir, key, "diff")

    def total_bytes(self) -> int:
        return sum(info.bytes for info in self.layers.values())

    def tempdir(self) -> str:
        """A fresh directory under tmp/ (same filesystem as the layers; the caller removes it)."""
        return tempfile.mkdtemp(dir=self.tmp_dir)

    async def ensure(self, key: str, produce: Callable[[str], Awaitable[None]]) -> LayerInfo:
        """The layer `key`, made by `produce(empty_dir)` if missing; concurrent callers share one producer."""
        info = self.layers.get(key)
        if info:
            info.last_used = time.time()
            return info
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._make(key, produce))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _make(self, key: str, produce: Callable[[str], Awaitable[None]]) -> LayerInfo:
        work = self.tempdir()
        try:
            diff = os.path.join(work, "diff")
            os.mkdir(diff, 0o755)
            await produce(diff)
            used, inodes = await asyncio.to_thread(usage, diff)
            info = LayerInfo(key, used, inodes, time.time())
            with open(os.path.join(work, "meta.json"), "w") as f:
                json.dump({"bytes": used, "inodes": inodes, "last_used": info.last_used}, f)
            os.chmod(work, 0o755)
            os.rename(work, os.path.join(self.layers_dir, key))
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, work, True)
            raise
        self.layers[key] = info
        self.unpacked += 1
        return info

    def busy(self) -> set[str]:
        return set(self._inflight)

    async def remove(self, keys: list[str]) -> None:
        """Take layers out of the store: all renamed away before the first await (so no concurrent
        `ensure` can hand one out), then deleted in a thread."""
        doomed = []
        for key in keys:
            self.layers.pop(key, None)
            doomed.append(os.path.join(self.tmp_dir, f"gc-{key}"))
            os.rename(os.path.join(self.layers_dir, key), doomed[-1])
        for path in doomed:
            await asyncio.to_thread(shutil.rmtree, path, True)
