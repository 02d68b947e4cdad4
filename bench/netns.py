"""Container networking benchmark: `.venv/bin/python -m bench.netns [--containers N]`.

For N "containers" (busybox processes in fresh network namespaces, made before timing):
1. BridgeNetworker.setup, net_in, net_out (one rule) and teardown per container (ms, median / p90),
   and the background work teardown leaves (veth + bridge deletes) per container;
2. as a peer, the conventional pyroute2 recipe for the same setup (veth add, move the peer into the
   netns, configure it through NetNS(path)) on the same machine.
Uses its own tag ("nb"), pool 10.249.0.0/22 and port pool; removes everything it made.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import statistics
import subprocess
import tempfile
import time

from pyroute2 import IPRoute, NetNS

from netns.bridged import BridgeNetworker
from netns.networker import PROTOCOL_TCP, NetOutRule, PortRange

POOL = ipaddress.IPv4Network("10.249.0.0/22")


def spawn_netns_processes(n: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen(["unshare", "--net", "/bin/busybox", "sleep", "600"]) for _ in range(n)]
    home = os.readlink("/proc/self/ns/net")
    for p in procs:
        while os.readlink(f"/proc/{p.pid}/ns/net") == home:
            time.sleep(0.001)
        subprocess.run(["nsenter", f"--net=/proc/{p.pid}/ns/net", "ip", "link", "set", "lo", "up"], check=True)
    return procs


def summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"{name:<34} median {statistics.median(ms):7.2f} ms   p90 {p90:7.2f} ms   (n={len(ms)})"


async def bench_networker(procs: list[subprocess.Popen], state_dir: str) -> None:
    net = BridgeNetworker(state_dir, POOL, tag="nb", port_pool=(43001, 1000))
    times: dict[str, list[float]] = {"setup": [], "net_in": [], "net_out": [], "teardown": []}
    rule = [NetOutRule(protocol=PROTOCOL_TCP, ports=[PortRange(443, 443)])]
    try:
        for i, p in enumerate(procs):
            for name, coro in (("setup", net.setup(f"b{i}", p.pid, "")), ("net_in", net.net_in(f"b{i}", 0, 8080)),
                               ("net_out", net.net_out(f"b{i}", rule))):
                t = time.perf_counter()
                await coro
                times[name].append((time.perf_counter() - t) * 1000)
        t0 = time.perf_counter()
        for i in range(len(procs)):
            t = time.perf_counter()
            await net.teardown(f"b{i}")
            times["teardown"].append((time.perf_counter() - t) * 1000)
        await net.settle()
        background = (time.perf_counter() - t0) * 1000 - sum(times["teardown"])
    finally:
        await net.close()  # with no container left, it removes its own table
    for name, ms in times.items():
        print(summary(f"networker {name}", ms))
    print(f"{'teardown background (veth+bridge)':<34} {background / len(procs):7.2f} ms per container")


def bench_conventional(procs: list[subprocess.Popen]) -> None:
    setup, delete = [], []
    with IPRoute() as ipr:
        for i, p in enumerate(procs):
            t = time.perf_counter()
            ipr.link("add", ifname=f"nbc{i}-0", kind="veth", peer={"ifname": f"nbc{i}-1"})
            peer = ipr.link_lookup(ifname=f"nbc{i}-1")[0]
            ipr.link("set", index=peer, net_ns_pid=p.pid)
            with NetNS(f"/proc/{p.pid}/ns/net") as ns:
                idx = ns.link_lookup(ifname=f"nbc{i}-1")[0]
                ns.link("set", index=idx, ifname="eth1", state="up")
                ns.addr("add", index=idx, address=str(POOL.network_address + 4 * i + 2), prefixlen=30)
            setup.append((time.perf_counter() - t) * 1000)
        for i in range(len(procs)):
            t = time.perf_counter()
            ipr.link("del", ifname=f"nbc{i}-0")
            delete.append((time.perf_counter() - t) * 1000)
    print(summary("peer: pyroute2 add+move+NetNS", setup))
    print(summary("peer: veth delete (synchronous)", delete))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    args = parser.parse_args()
    procs = spawn_netns_processes(args.containers)
    try:
        with tempfile.TemporaryDirectory() as state_dir:
            asyncio.run(bench_networker(procs, state_dir))
        bench_conventional(procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
