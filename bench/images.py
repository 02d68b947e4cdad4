"""Image provider benchmark: `.venv/bin/python -m bench.images [--cached-runs N] [--concurrent N]`.

Against Debian's docker-registry on loopback, with a busybox + 16 MiB image (two gzip layers):
1. one create from a cold store (and `skopeo copy` of the same image to an OCI dir, as a peer);
2. N concurrent creates of the same image into another cold store: bytes downloaded, layers unpacked
   and registry blob GETs per layer (each must be one);
3. median create (+ destroy) time once cached, by tag (one manifest GET) and by digest (no network).
Everything runs as root under a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from images.provider import RootfsRequest
from images.remote import ImageProvider
from tests.support.oci_images import LayoutWriter, OciImage, TarEntry, busybox_entries, gzip_layer
from tests.support.upstream_registry import UpstreamRegistry


def build_image(layout: Path) -> OciImage:
    data = random.Random(1).randbytes(16 << 20)
    writer = LayoutWriter(layout)
    layers = [gzip_layer(busybox_entries()), gzip_layer([TarEntry("data", "dir", mode=0o755),
                                                         TarEntry("data/blob.bin", data=data)])]
    return writer.finish(writer.image(layers), "v1")


async def timed_create(provider: ImageProvider, handle: str, uri: str) -> float:
    start = time.perf_counter()
    await provider.create(RootfsRequest(handle, uri))
    return (time.perf_counter() - start) * 1000


async def run(work: Path, registry: UpstreamRegistry, image: OciImage, cached_runs: int, concurrent: int) -> None:
    tag_uri = f"docker://{registry.host}/bench/image#v1"
    digest_uri = f"docker://{registry.host}/bench/image@{image.digest}"
    size = sum(image.blobs.values())
    print(f"image: {len(image.layer_digests)} layers, {size / 1e6:.1f} MB compressed")

    cold = ImageProvider(str(work / "cold"))
    print(f"cold create:              {await timed_create(cold, 'c0', tag_uri):8.1f} ms")
    await cold.destroy("c0")
    await cold.close()
    start = time.perf_counter()
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{registry.host}/bench/image:v1",
                    f"oci:{work / 'skopeo'}:v1"], check=True, env=dict(os.environ, HOME=str(work)))
    print(f"skopeo copy (peer, no unpack): {(time.perf_counter() - start) * 1000:8.1f} ms")

    gets_before = {d: registry.blob_gets(d) for d in image.layer_digests}
    provider = ImageProvider(str(work / "store"))
    start = time.perf_counter()
    await asyncio.gather(*(provider.create(RootfsRequest(f"p{i}", tag_uri)) for i in range(concurrent)))
    wall = (time.perf_counter() - start) * 1000
    gets = [registry.blob_gets(d) - gets_before[d] for d in image.layer_digests]
    print(f"{concurrent} concurrent cold creates: {wall:8.1f} ms wall")
    print(f"  bytes downloaded: {provider.stats.bytes_downloaded} (image: {size})")
    print(f"  layers unpacked:  {provider.layers.unpacked} (image: {len(image.layer_digests)})")
    print(f"  blob GETs per layer at the registry: {gets}")
    for i in range(concurrent):
        await provider.destroy(f"p{i}")

    for label, uri in (("by tag", tag_uri), ("by digest", digest_uri)):
        times, destroys = [], []
        await timed_create(provider, "warm", uri)
        await provider.destroy("warm")
        for i in range(cached_runs):
            times.append(await timed_create(provider, f"w{i}", uri))
            start = time.perf_counter()
            await provider.destroy(f"w{i}")
            destroys.append((time.perf_counter() - start) * 1000)
        p90 = sorted(times)[int(len(times) * 0.9)]
        print(f"cached create {label:9}: median {statistics.median(times):6.2f} ms, p90 {p90:6.2f} ms; "
              f"destroy median {statistics.median(destroys):.2f} ms")
    await provider.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached-runs", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-images-"))
    registry = UpstreamRegistry(work / "registry")
    try:
        image = build_image(work / "layout")
        registry.start()
        registry.push(image, "bench/image")
        asyncio.run(run(work, registry, image, args.cached_runs, args.concurrent))
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
