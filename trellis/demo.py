"""`make demo`: start a Garden daemon, run a process in a busybox container, show it, clean up."""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

from garden import models
from garden.daemon_process import GardenServer
from images.busybox import build_rootfs


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="trellis-demo-"))
    server = None
    try:
        say("building a busybox root filesystem from Debian's busybox-static")
        rootfs = build_rootfs(str(workdir / "busybox"))
        server = GardenServer(workdir / "daemon", rootfs, ["--network-tag", "dm"])
        say(f"starting `trellis garden serve` on {server.socket_path}")
        server.start()
        client = server.client()
        start = time.perf_counter()
        handle = client.create(models.ContainerSpec(handle="demo", env=["GREETING=hello from a container"],
                                                    properties={"app": "demo"},
                                                    limits=models.Limits(memory=models.MemoryLimits(64 << 20))))
        info = client.info(handle)
        say(f"created container {handle!r} in {(time.perf_counter() - start) * 1000:.1f} ms, IP {info.container_ip}")
        out = io.BytesIO()
        script = ('echo "$GREETING"; echo "hostname: $(hostname)"; echo "pid 1: $(cat /proc/1/cmdline | tr "\\0" " ")";'
                  ' echo "processes:"; ps; id')
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
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
