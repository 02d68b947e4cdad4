"""`make demo`: the flow a user sees, end to end on this machine (loopback only).

An image is pushed to a registry (Debian's docker-registry, standing in for the upstream), staged
through the registry cache (copied once, digest pinned), the upstream is stopped, and a Garden
daemon runs a container from the pinned digest, pulled from the cache alone.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from garden import models
from garden.daemon_process import GardenServer
from images.busybox import build_rootfs
from tests.support.cache_server import CACHE_USERS, CacheServer
from tests.support.oci_images import build_busybox
from tests.support.upstream_registry import UpstreamRegistry


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def stage(cache: CacheServer, ref: str) -> str:
    """`trellis cache stage REF`, as the stager user; returns the pinned reference it prints."""
    user, (password, _) = "stager", CACHE_USERS["stager"]
    env = dict(os.environ, TRELLIS_CACHE_USER=user, TRELLIS_CACHE_PASSWORD=password)
    done = subprocess.run([sys.executable, "-m", "trellis.cli", "cache", "stage", ref, "--cache", cache.url],
                          env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="trellis-demo-"))
    upstream = cache = server = None
    try:
        say("building a busybox image (OCI layout) from Debian's busybox-static, pushing it to a registry")
        image = build_busybox(workdir / "layout", extra_files={"etc/motd": "hello from a pinned image\n"})
        upstream = UpstreamRegistry(workdir / "upstream").start()
        upstream.push(image, "demo/app", "v1")
        cache = CacheServer(workdir / "cache", upstreams=[upstream.host]).start()
        say(f"staging {upstream.host}/demo/app:v1 through the cache at {cache.url}")
        start = time.perf_counter()
        pinned = stage(cache, f"{upstream.host}/demo/app:v1")
        say(f"pinned {pinned} in {(time.perf_counter() - start) * 1000:.0f} ms; stopping the upstream registry")
        upstream.stop()

        rootfs = build_rootfs(str(workdir / "busybox"))
        server = GardenServer(workdir / "daemon", rootfs, ["--network-tag", "dm"])
        say(f"starting `trellis garden serve` on {server.socket_path}")
        server.start()
        client = server.client()
        cell, (cell_password, _) = "cell", CACHE_USERS["cell"]
        start = time.perf_counter()
        handle = client.create(models.ContainerSpec(
            handle="demo", image=models.ImageRef(uri=f"docker://{pinned}", username=cell, password=cell_password),
            env=["GREETING=hello from a container"], limits=models.Limits(memory=models.MemoryLimits(64 << 20))))
        info = client.info(handle)
        say(f"created container {handle!r} from the cache in {(time.perf_counter() - start) * 1000:.0f} ms, "
            f"IP {info.container_ip}")
        out = io.BytesIO()
        script = ('echo "$GREETING"; cat /etc/motd; echo "hostname: $(hostname)"; '
                  'echo "pid 1: $(tr "\\0" " " < /proc/1/cmdline)"; id; cat /proc/self/uid_map')
        start = time.perf_counter()
        code = client.run(handle, models.ProcessSpec(path="sh", args=["-c", script]), stdout=out, stderr=out).wait()
        say(f"ran a process in {(time.perf_counter() - start) * 1000:.1f} ms, exit status {code}; its output:")
        sys.stdout.write(out.getvalue().decode())
        metrics = client.metrics(handle)
        say(f"metrics: {metrics.pids.current} process(es), memory {metrics.memory['TotalUsageTowardLimit']} bytes")
        client.destroy(handle)
        say(f"destroyed {handle!r}; containers left: {client.list()}")
        return 0 if code == 0 else 1
    finally:
        for running in (server, cache, upstream):
            if running is not None:
                running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
