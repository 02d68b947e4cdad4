"""The rootfs provider for every scheme: docker:// (registry) and oci:// (layout) images as overlay roots;
local directories and tarballs go to `LocalProvider`.

Each layer is fetched, verified (blob digest and size, then the uncompressed diff_id) and unpacked once
into the layer store under its chain id; concurrent creates share the work. Credentials from a request
are kept in a client used for that pull only.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable

import aiohttp

from images.layers import LayerInfo
from images.local import Image, LocalProvider
from images.manifest import ImagePlan, Layer
from images.provider import RootfsRequest
from images.reference import DOCKER_HUB, ImageRef
from images.registry import RegistryClient, TransferStats, new_session
from images.sources import LayoutSource, RegistrySource, Source
from images.unpack import UnpackError, unpack


class ImageProvider(LocalProvider):
    def __init__(self, store_dir: str, default_rootfs: str = "", *, default_registry: str = DOCKER_HUB,
                 insecure_registries: tuple[str, ...] = (), gc_threshold: int = 0, enforce_disk_limits: bool = True,
                 retries: int = 3, timeout: float = 30.0) -> None:
        super().__init__(store_dir, default_rootfs, gc_threshold=gc_threshold,
                         enforce_disk_limits=enforce_disk_limits, default_registry=default_registry)
        self.insecure = set(insecure_registries)
        self.retries, self.timeout = retries, timeout
        self.plans: dict[str, ImagePlan] = {}
        self.stats = TransferStats()
        self._session: aiohttp.ClientSession | None = None
        self._anonymous: dict[str, RegistryClient] = {}
        self._resolving: dict[tuple[str, str, str], asyncio.Future[ImagePlan]] = {}

    async def close(self) -> None:
        """Close the HTTP session (forgetting cached anonymous tokens)."""
        self._anonymous.clear()
        if self._session:
            await self._session.close()
            self._session = None

    def _client(self, ref: ImageRef, request: RootfsRequest) -> RegistryClient:
        """A private pull gets its own client (dropped afterwards); anonymous clients are kept per registry."""
        if self._session is None:
            self._session = new_session(self.timeout)
        if not request.username and ref.registry in self._anonymous:
            return self._anonymous[ref.registry]
        client = RegistryClient(self._session, ref.registry, insecure=ref.registry in self.insecure,
                                username=request.username, password=request.password, retries=self.retries,
                                stats=self.stats)
        if not request.username:
            self._anonymous[ref.registry] = client
        return client

    async def resolve(self, ref: ImageRef, request: RootfsRequest) -> Image:
        if ref.kind == "local":
            return await super().resolve(ref, request)
        source: Source = (RegistrySource(ref, self.plans, self._client(ref, request)) if ref.kind == "docker"
                          else LayoutSource(ref, self.plans))
        key = (str(ref), request.username, request.password)  # only identical requests share a resolution
        task = self._resolving.get(key)
        if task is None:
            task = self._resolving[key] = asyncio.ensure_future(source.plan())
            task.add_done_callback(lambda _: self._resolving.pop(key, None))
        plan = await asyncio.shield(task)
        results = await asyncio.gather(*(self.layers.ensure(_key(layer), self._producer(source, layer))
                                         for layer in plan.layers), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        infos = [r for r in results if isinstance(r, LayerInfo)]
        return Image(layer_keys=[info.key for info in infos], config=plan.config,
                     base_bytes=sum(i.bytes for i in infos), base_inodes=sum(i.inodes for i in infos))

    def _producer(self, source: Source, layer: Layer) -> Callable[[str], Awaitable[None]]:
        async def produce(diff: str) -> None:
            work = self.layers.tempdir()
            try:
                blob = await source.fetch(layer, work)
                diff_id = await asyncio.to_thread(unpack, blob, layer.compression, diff, self.devices)
            finally:
                await asyncio.to_thread(shutil.rmtree, work, True)
            if diff_id != layer.diff_id:
                raise UnpackError(f"layer {layer.blob.digest} unpacks to {diff_id}, but the config says "
                                  f"{layer.diff_id}")
        return produce


def _key(layer: Layer) -> str:
    return layer.chain_id.split(":", 1)[1]
