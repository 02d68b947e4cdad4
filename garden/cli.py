"""`trellis garden serve`: the Garden daemon. Flags are named like Guardian's `gdn server`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal

from garden.linux.helper import Helper

DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
           "h": 3_600_000_000_000}


def parse_duration(text: str) -> int:
    """A Go duration ("90s", "1h30m", "500ms") or a plain number of seconds → nanoseconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return int(float(text) * 1e9)
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (like 30s, 5m, 1h30m)")
    return int(sum(float(n) * UNIT_NS[u] for n, u in parts))


def build_parser() -> argparse.ArgumentParser:
    from images import options as image_options
    from netns import options as net_options

    parser = argparse.ArgumentParser(prog="trellis garden serve", description="Run the Garden daemon.")
    parser.add_argument("--bind-ip", default=None, help="TCP address to listen on (with --bind-port)")
    parser.add_argument("--bind-port", type=int, default=None, help="TCP port (Garden's usual port is 7777)")
    parser.add_argument("--bind-socket", default=None, help="unix socket path (default /tmp/garden.sock)")
    parser.add_argument("--debug-bind-port", type=int, default=None, help="port for /debug/vars (like gdn's 17013)")
    parser.add_argument("--depot", default="/run/trellis/depot", help="directory for container state")
    parser.add_argument("--network-state-dir", default="/run/trellis/network", help="subnet and port allocations")
    parser.add_argument("--max-containers", type=int, default=250, help="0 = only the network pool limits")
    parser.add_argument("--default-grace-time", type=parse_duration, default=0,
                        help="destroy containers unused this long (Go duration; 0 = never)")
    parser.add_argument("--cgroup-parent", default="trellis", help="name of the cgroup holding the containers'")
    parser.add_argument("--init-binary", default="/usr/bin/catatonit", help="static pid-1 reaper")
    parser.add_argument("--no-new-privileges", action="store_true", help="set no_new_privs on container processes")
    parser.add_argument("--disable-networking", action="store_true",
                        help="containers get a network namespace with loopback only")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error", "fatal"])
    image_options.add_arguments(parser)
    net_options.add_arguments(parser)
    return parser


async def _serve(args: argparse.Namespace, helper: Helper) -> None:
    from garden.api import server
    from garden.engine.backend import LinuxBackend
    from garden.engine.depot import Depot
    from garden.engine.runtime import Runtime
    from garden.linux import cgroups
    from images import options as image_options
    from netns import options as net_options

    depot = Depot(args.depot)
    network = None
    if not args.disable_networking:
        network = net_options.create_networker(args, args.network_state_dir)
    runtime = Runtime(helper=helper, cgroups=cgroups.detect(args.cgroup_parent),
                      rootfs=image_options.create_provider(args), network=network,
                      depot=depot, init_binary=args.init_binary, no_new_privileges=args.no_new_privileges)
    backend = LinuxBackend(runtime, default_grace_ns=args.default_grace_time, max_containers=args.max_containers)
    await backend.restore()
    runner = await server.start(server.build_app(backend), bind_socket=args.bind_socket, bind_ip=args.bind_ip,
                                bind_port=args.bind_port)
    runners = [runner]
    if args.debug_bind_port:
        runners.append(await server.start(server.build_debug_app(), bind_ip=args.bind_ip or "127.0.0.1",
                                          bind_port=args.debug_bind_port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("trellis.garden").info("serving on %s", args.bind_socket or f"{args.bind_ip}:{args.bind_port}")
    await stop.wait()
    for r in runners:
        await r.cleanup()
    await backend.shutdown()
    await runtime.rootfs.close()
    if network is not None:
        await network.close()


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "serve":
        print("usage: trellis garden serve [flags]  (see trellis garden serve --help)")
        return 2
    args = build_parser().parse_args(argv[1:])
    if args.bind_socket is None and args.bind_port is None:
        args.bind_socket = "/tmp/garden.sock"
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(args.log_level, args.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    helper = Helper.start()  # before anything can start a thread
    try:
        asyncio.run(_serve(args, helper))
    finally:
        helper.stop()
    return 0
