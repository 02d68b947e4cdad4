"""Registry cache benchmark, side by side with its peers (run: `.venv/bin/python -m bench.registry_cache`).

1. Staging a ~64 MB image through the cache vs `skopeo copy` registry -> registry of the same image.
2. A warm 64 MB blob served by the cache vs by Debian's docker-registry (curl, body to /dev/null).
3. A manifest by digest (one keep-alive requests.Session for both servers).
Everything runs on 127.0.0.1 in a temp dir; every process started is stopped by its pid.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from tests.support.cache_server import CACHE_USERS, CacheServer
from tests.support.oci_images import build_random
from tests.support.upstream_registry import UpstreamRegistry

STAGER = ("stager", CACHE_USERS["stager"][0])
CELL = ("cell", CACHE_USERS["cell"][0])


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def curl_speed(url: str, auth: tuple[str, str] | None) -> float:
    """Bytes/s of one GET as curl measures it."""
    cmd = ["curl", "-sf", "-o", "/dev/null", "-w", "%{speed_download}", url]
    if auth:
        cmd[1:1] = ["-u", ":".join(auth)]
    return float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def manifest_latency(url: str, auth: tuple[str, str] | None, accept: str, n: int) -> float:
    with requests.Session() as session:
        session.auth = auth
        session.get(url, headers={"Accept": accept}).raise_for_status()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            session.get(url, headers={"Accept": accept}).raise_for_status()
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def row(what: str, ours: float, peer: float, unit: str, peer_name: str, higher_is_better: bool) -> str:
    ratio = ours / peer if higher_is_better else peer / ours
    return f"{what:<34} cache {ours:>9.3f} {unit:<5} {peer_name:<16} {peer:>9.3f} {unit:<5} ratio {ratio:5.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        work = Path(tmp)
        image = build_random(work / "layout", args.size_mb << 20)
        layer = image.layer_digests[0]
        upstream = UpstreamRegistry(work / "upstream").start()
        dest: UpstreamRegistry | None = None
        cache = CacheServer(work / "cache", [upstream.host])
        try:
            upstream.push(image, "bench/rand", "v1")
            cache.start()
            ref = f"{upstream.host}/bench/rand:v1"

            def stage_once() -> None:
                resp = requests.post(f"{cache.url}/stage", json={"ref": ref}, auth=STAGER, timeout=120)
                resp.raise_for_status()
                pins.append(resp.json()["pin"])

            pins: list[str] = []
            stage_times = []
            for _ in range(args.runs):
                stage_times.append(timed(stage_once))
                requests.delete(f"{cache.url}/pins/{pins.pop()}", auth=STAGER, timeout=10)
                requests.post(f"{cache.url}/gc", auth=STAGER, timeout=60).raise_for_status()  # cold again
            skopeo_times = []
            for i in range(args.runs):  # a fresh destination each time, so no blob can be skipped or mounted
                dest = UpstreamRegistry(work / f"dest{i}").start()
                cmd = ["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
                       f"docker://{ref}", f"docker://{dest.host}/bench/copy:v1"]
                skopeo_times.append(timed(lambda cmd=cmd: subprocess.run(cmd, check=True, capture_output=True)))
                dest.stop()
            stage_once()  # keep one pinned for serving
            cache_url = f"{cache.url}/v2/bench/rand/blobs/{layer}"
            reg_url = f"{upstream.url}/v2/bench/rand/blobs/{layer}"
            curl_speed(cache_url, CELL), curl_speed(reg_url, None)  # warm page cache and connections
            cache_speed = statistics.median(curl_speed(cache_url, CELL) for _ in range(args.runs * 2))
            reg_speed = statistics.median(curl_speed(reg_url, None) for _ in range(args.runs * 2))
            manifest_path = f"/v2/bench/rand/manifests/{image.digest}"
            cache_manifest = manifest_latency(cache.url + manifest_path, CELL, image.media_type, 200)
            reg_manifest = manifest_latency(upstream.url + manifest_path, None, image.media_type, 200)
        finally:
            cache.stop()
            if dest:
                dest.stop()
            upstream.stop()
    size = sum(image.blobs.values()) / 1e6
    print(f"image: {size:.1f} MB ({len(image.blobs)} blobs), runs: {args.runs}, medians")
    print(row("stage (cold) vs skopeo copy", statistics.median(stage_times), statistics.median(skopeo_times),
              "s", "skopeo copy", higher_is_better=False))
    print(row("warm blob throughput", cache_speed / 1e9, reg_speed / 1e9, "GB/s", "docker-registry",
              higher_is_better=True))
    print(row("manifest by digest", cache_manifest * 1e3, reg_manifest * 1e3, "ms", "docker-registry",
              higher_is_better=False))


if __name__ == "__main__":
    main()
