"""`trellis gaol`: gaol's container commands on top of garden.client.AsyncClient.

The target comes from `--target`/`-t` (host:port or a socket path), `$GAOL_TARGET`, else
127.0.0.1:7777; `--target-network` (tcp|unix) overrides the guess from the address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import stat
import sys
import termios
import tty
from collections.abc import Iterator
from typing import Any

from garden import errors, models
from garden.api import codec
from garden.client import AsyncClient

DEFAULT_TARGET = "127.0.0.1:7777"
_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9}


def parse_duration(text: str) -> int:
    """Go duration ("1h30m", "500ms", "10s") or plain seconds -> nanoseconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return int(float(text) * 10**9)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
    return int(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=") if "=" in text else text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _bind_mount(text: str) -> models.BindMount:
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[2:] not in ([], ["ro"], ["rw"]):
        raise argparse.ArgumentTypeError(f"expected SRC:DST[:ro|rw], got {text!r}")
    mode = models.BIND_MOUNT_RW if parts[2:] == ["rw"] else models.BIND_MOUNT_RO
    return models.BindMount(src_path=parts[0], dst_path=parts[1], mode=mode)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trellis gaol", description="Garden container commands (gaol's verbs)")
    p.add_argument("-t", "--target", default=os.environ.get("GAOL_TARGET", DEFAULT_TARGET),
                   help="server address, host:port or unix socket path (env GAOL_TARGET)")
    p.add_argument("--target-network", choices=("tcp", "unix"), default=None,
                   help="network of --target (default: unix if it contains '/', else tcp)")
    sub = p.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    def cmd(name: str, text: str, handle: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=text, description=text)
        if handle:
            sp.add_argument("handle")
        return sp

    cmd("ping", "check the server is up", handle=False)
    c = cmd("create", "create a container and print its handle", handle=False)
    c.add_argument("-n", "--handle", default="")
    c.add_argument("-r", "--rootfs", default="", help="rootfs path or image URI")
    c.add_argument("-p", "--privileged", action="store_true")
    c.add_argument("-g", "--grace", type=parse_duration, default=0, help="grace time, e.g. 5m")
    c.add_argument("--network", default="")
    c.add_argument("--env", action="append", default=[], metavar="K=V")
    c.add_argument("-m", "--bind-mount", type=_bind_mount, action="append", default=[],
                   metavar="SRC:DST[:ro|rw]")
    c.add_argument("-P", "--property", type=_key_value, action="append", default=[], metavar="K=V")
    c.add_argument("--limit-memory", type=int, default=0, metavar="BYTES")
    c.add_argument("--limit-cpu", type=int, default=0, metavar="WEIGHT")
    c.add_argument("--limit-disk", type=int, default=0, metavar="BYTES")
    c.add_argument("--limit-pids", type=int, default=0, metavar="N")
    ls = cmd("list", "list container handles", handle=False)
    ls.add_argument("-p", "--property", type=_key_value, action="append", default=[], metavar="K=V",
                    help="only containers with this property (repeatable)")
    cmd("info", "print a container's info as JSON")
    cmd("metrics", "print a container's metrics as JSON")
    d = sub.add_parser("destroy", help="destroy containers")
    d.add_argument("handles", nargs="+")
    s = cmd("stop", "stop every process in a container")
    s.add_argument("-k", "--kill", action="store_true")
    r = cmd("run", "run a process; prints its id unless --attach")
    r.add_argument("-a", "--attach", action="store_true", help="stream I/O and exit with its status")
    r.add_argument("-c", "--command", required=True, help="command line (split like a shell)")
    r.add_argument("-d", "--dir", default="")
    r.add_argument("-u", "--user", default="")
    r.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    r.add_argument("-t", "--tty", action="store_true")
    r.add_argument("-i", "--id", default="", help="process id")
    a = cmd("attach", "attach to a process and exit with its status")
    a.add_argument("-p", "--pid", required=True, help="process id")
    sh = cmd("shell", "interactive shell in a container")
    sh.add_argument("-u", "--user", default="")
    si = cmd("stream-in", "extract a tar from stdin into the container")
    si.add_argument("-t", "--to", required=True, help="destination directory")
    si.add_argument("-u", "--user", default="")
    so = cmd("stream-out", "write a tar of a container path to stdout")
    so.add_argument("-f", "--from", dest="source", required=True, help="source path")
    so.add_argument("-u", "--user", default="")
    n = cmd("net-in", "map a host port to a container port; prints host_port:container_port")
    n.add_argument("-p", "--port", type=int, default=0, help="container port")
    n.add_argument("-H", "--host-port", type=int, default=0)
    cmd("properties", "print a container's properties")
    g = cmd("get-property", "print one property")
    g.add_argument("key")
    sp = cmd("set-property", "set a property")
    sp.add_argument("key")
    sp.add_argument("value")
    rp = cmd("remove-property", "remove a property")
    rp.add_argument("key")
    gt = cmd("set-grace-time", "change a container's grace time")
    gt.add_argument("grace", type=parse_duration)
    return p


def _print_json(kind: codec.Kind, value: Any) -> None:
    print(json.dumps(kind.encode(value), indent=2))


def _out(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _err(data: bytes) -> None:
    sys.stderr.buffer.write(data)
    sys.stderr.buffer.flush()


async def _stdin_source() -> Any:
    """Something AsyncClient reads stdin from without blocking the loop (pipes, ttys, files)."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:  # no stdin at all
        return b""
    if stat.S_ISREG(mode) or stat.S_ISCHR(mode) and not os.isatty(0):
        return sys.stdin.buffer  # files and /dev/null: reads never block for long
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    pipe = os.fdopen(0, "rb", 0, closefd=False)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


async def _interactive(client: AsyncClient, handle: str, spec: models.ProcessSpec | None,
                       process_id: str = "") -> int:
    """Run (spec) or attach (process_id) with this terminal's stdin/stdout/stderr; exit status."""
    stdin = await _stdin_source()
    is_tty = spec is not None and spec.tty is not None and os.isatty(0)
    with _raw_terminal(is_tty):
        if spec is not None:
            process = await client.run(handle, spec, stdin, _out, _err)
        else:
            process = await client.attach(handle, process_id, stdin, _out, _err)
        if is_tty:
            loop = asyncio.get_running_loop()

            def resize() -> None:
                size = os.get_terminal_size(0)
                loop.create_task(process.set_tty(size.columns, size.lines))

            loop.add_signal_handler(signal.SIGWINCH, resize)
        return await process.wait()


def _tty_spec() -> models.TTYSpec:
    try:
        size = os.get_terminal_size(0)
        return models.TTYSpec(models.WindowSize(size.columns, size.lines))
    except OSError:
        return models.TTYSpec()


async def _dispatch(args: argparse.Namespace, client: AsyncClient) -> int:
    command, h = args.verb, getattr(args, "handle", "")
    if command == "ping":
        await client.ping()
    elif command == "create":
        limits = models.Limits(cpu=models.CPULimits(weight=args.limit_cpu),
                               disk=models.DiskLimits(byte_hard=args.limit_disk),
                               memory=models.MemoryLimits(args.limit_memory),
                               pid=models.PidLimits(args.limit_pids))
        spec = models.ContainerSpec(
            handle=args.handle, grace_time_ns=args.grace, image=models.ImageRef(uri=args.rootfs),
            bind_mounts=args.bind_mount, network=args.network, properties=dict(args.property),
            env=args.env, privileged=args.privileged, limits=limits)
        print(await client.create(spec))
    elif command == "list":
        for handle in await client.list(dict(args.property)):
            print(handle)
    elif command == "info":
        _print_json(codec.CONTAINER_INFO, await client.info(h))
    elif command == "metrics":
        _print_json(codec.METRICS, await client.metrics(h))
    elif command == "destroy":
        for handle in args.handles:
            await client.destroy(handle)
    elif command == "stop":
        await client.stop(h, args.kill)
    elif command == "run":
        argv = shlex.split(args.command)
        if not argv:
            raise errors.GardenError("empty --command")
        spec = models.ProcessSpec(id=args.id, path=argv[0], args=argv[1:], env=args.env, dir=args.dir,
                                  user=args.user, tty=_tty_spec() if args.tty else None)
        if args.attach:
            return await _interactive(client, h, spec)
        process = await client.run(h, spec)
        print(process.id)
        process.detach()
    elif command == "attach":
        return await _interactive(client, h, None, args.pid)
    elif command == "shell":
        spec = models.ProcessSpec(path="/bin/sh", args=["-l"], user=args.user, tty=_tty_spec())
        return await _interactive(client, h, spec)
    elif command == "stream-in":
        await client.stream_in(h, args.to, await _stdin_source(), args.user)
    elif command == "stream-out":
        async for chunk in await client.stream_out(h, args.source, args.user):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    elif command == "net-in":
        host_port, container_port = await client.net_in(h, args.host_port, args.port)
        print(f"{host_port}:{container_port}")
    elif command == "properties":
        for key, value in sorted((await client.properties(h)).items()):
            print(f"{key}\t{value}")
    elif command == "get-property":
        print(await client.property(h, args.key))
    elif command == "set-property":
        await client.set_property(h, args.key, args.value)
    elif command == "remove-property":
        await client.remove_property(h, args.key)
    elif command == "set-grace-time":
        await client.set_grace_time(h, args.grace)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for `trellis gaol …`; returns the exit code (a process's status for run -a)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        client = AsyncClient(args.target, args.target_network)
        return asyncio.run(_dispatch(args, client))
    except errors.GardenError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    except (ValueError, KeyboardInterrupt) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
