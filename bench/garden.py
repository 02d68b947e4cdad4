"""Garden daemon benchmark beside runc, on the same busybox rootfs (run: `.venv/bin/python -m bench.garden`).

1. create → run /bin/true → destroy through the API vs one `runc run` (create + start + wait + delete).
2. create alone and destroy alone through the API (with and without networking).
3. Run → exit status of /bin/true in an existing container vs `runc exec`.
4. stdout throughput of one process streamed through the API.
5. daemon RSS and host memory per idle container with N idle containers.
Every process started is stopped by its pid; every container is destroyed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from garden import models
from garden.daemon_process import GardenServer
from images.busybox import build_rootfs


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):7.2f} ms   p90 {ms[int(len(ms) * 0.9) - 1]:7.2f} ms"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def runc_bundle(workdir: Path, rootfs: str) -> Path:
    bundle = workdir / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def runc_run(bundle: Path, name: str) -> None:
    subprocess.run(["runc", "run", "--bundle", str(bundle), name], check=True, stdin=subprocess.DEVNULL)


def bench_runc(bundle: Path, rounds: int) -> tuple[list[float], list[float]]:
    runs = [timed(lambda i=i: runc_run(bundle, f"trellis-bench-{os.getpid()}-{i}")) for i in range(rounds)]
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["args"] = ["/bin/sleep", "1000"]
    (bundle / "config.json").write_text(json.dumps(spec))
    name = f"trellis-bench-exec-{os.getpid()}"
    subprocess.run(["runc", "run", "-d", "--bundle", str(bundle), name], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        execs = [timed(lambda: subprocess.run(["runc", "exec", name, "/bin/true"], check=True))
                 for _ in range(rounds)]
    finally:
        subprocess.run(["runc", "delete", "--force", name], check=False)
    return runs, execs


def bench_daemon(server: GardenServer, rounds: int) -> dict[str, list[float]]:
    client = server.client()
    out: dict[str, list[float]] = {"cycle": [], "create": [], "destroy": [], "run": []}
    true = models.ProcessSpec(path="/bin/true")
    for _ in range(rounds):
        start = time.perf_counter()
        handle = client.create(models.ContainerSpec())
        client.run(handle, true).wait()
        client.destroy(handle)
        out["cycle"].append(time.perf_counter() - start)
    for _ in range(rounds):
        start = time.perf_counter()
        handle = client.create(models.ContainerSpec())
        out["create"].append(time.perf_counter() - start)
        start = time.perf_counter()
        client.destroy(handle)
        out["destroy"].append(time.perf_counter() - start)
    handle = client.create(models.ContainerSpec())
    out["run"] = [timed(lambda: client.run(handle, true).wait()) for _ in range(rounds)]
    size = 256 << 20
    sink = io.BytesIO()
    spec = models.ProcessSpec(path="head", args=["-c", str(size), "/dev/zero"])
    elapsed = timed(lambda: client.run(handle, spec, stdout=sink).wait())
    assert sink.tell() == size, sink.tell()
    out["stdout_MBps"] = [size / elapsed / 1e6]
    client.destroy(handle)
    return out


def idle_memory(server: GardenServer, count: int) -> tuple[float, float]:
    """(daemon RSS MB, host MB per idle container) with `count` idle containers."""
    client = server.client()

    def used_mb() -> float:
        """Memory in use that the kernel cannot just drop (page cache and reclaimable slab left out)."""
        with open("/proc/meminfo") as f:
            kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f)}
        free = kb["MemFree"] + kb["Buffers"] + kb["Cached"] - kb["Shmem"] + kb["SReclaimable"]
        return (kb["MemTotal"] - free) / 1024

    before = used_mb()
    handles = [client.create(models.ContainerSpec()) for _ in range(count)]
    time.sleep(1)
    after = used_mb()
    with open(f"/proc/{server.proc.pid}/status") as f:
        rss = int(next(line for line in f if line.startswith("VmRSS")).split()[1]) / 1024
    for handle in handles:
        client.destroy(handle)
    return rss, (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--idle", type=int, default=100, help="idle containers for the memory check")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="trellis-bench-"))
    try:
        rootfs = build_rootfs(str(workdir / "busybox"))
        runc_runs, runc_execs = bench_runc(runc_bundle(workdir, rootfs), args.rounds)
        results = {}
        for label, extra in (("no network", ["--disable-networking"]), ("network", [])):
            server = GardenServer(workdir / label.replace(" ", "-"), rootfs, extra + ["--network-tag", "bn"])
            server.start()
            try:
                results[label] = bench_daemon(server, args.rounds)
                if label == "network":
                    results["idle"] = idle_memory(server, args.idle)
            finally:
                server.stop()
        print(f"\nGarden daemon vs runc ({args.rounds} rounds each, busybox rootfs, medians)")
        print(f"  runc run /bin/true (create+start+wait+delete)  {percentiles(runc_runs)}")
        for label in ("no network", "network"):
            r = results[label]
            ratio = statistics.median(runc_runs) / statistics.median(r["cycle"])
            print(f"  trellis create+run+destroy, {label:<10}        {percentiles(r['cycle'])}   "
                  f"{ratio:.2f}x runc's speed")
            print(f"  trellis create, {label:<10}                    {percentiles(r['create'])}")
            print(f"  trellis destroy, {label:<10}                   {percentiles(r['destroy'])}")
        print(f"  runc exec /bin/true                              {percentiles(runc_execs)}")
        r = results["no network"]
        ratio = statistics.median(runc_execs) / statistics.median(r["run"])
        print(f"  trellis Run /bin/true → exit status             {percentiles(r['run'])}   "
              f"{ratio:.2f}x runc exec's speed")
        print(f"  trellis stdout through the API                   {r['stdout_MBps'][0]:7.0f} MB/s")
        rss, per = results["idle"]
        print(f"  {args.idle} idle containers: daemon RSS {rss:.0f} MB, host memory {per:.2f} MB per container")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
