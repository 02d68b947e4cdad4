"""`trellis cache …`: serve the cache, stage an image through it, add a user to a users file."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from pathlib import Path

from registry_cache.auth import PERMS, hash_password

DEFAULT_CACHE = "http://127.0.0.1:5050"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trellis cache", description="the private registry cache")
    sub = p.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="run the cache server")
    serve.add_argument("--listen", default="127.0.0.1:5050", help="HOST:PORT (default %(default)s)")
    serve.add_argument("--storage", required=True, type=Path, help="storage directory")
    serve.add_argument("--users", type=Path, help="users file (see `trellis cache adduser`)")
    serve.add_argument("--upstream", action="append", default=[], metavar="HOST[:PORT]",
                       help="an upstream registry reached over plain HTTP (repeatable); others use HTTPS")
    serve.add_argument("--pull-through", metavar="HOST[:PORT]",
                       help="serve unpinned images from this upstream on demand (off by default)")
    serve.add_argument("--token-ttl", type=int, default=3600)
    serve.add_argument("--log-level", default="info")
    stage = sub.add_parser("stage", help="copy an image into the cache and pin it")
    stage.add_argument("ref", help="upstream reference, e.g. registry.example:5000/team/app:v1")
    stage.add_argument("--username", help="upstream user (private images)")
    stage.add_argument("--password-stdin", action="store_true", help="read the upstream password from stdin")
    stage.add_argument("--cache", default=os.environ.get("TRELLIS_CACHE", DEFAULT_CACHE), help="cache URL")
    stage.add_argument("--cache-user", default=os.environ.get("TRELLIS_CACHE_USER", ""),
                       help="cache user (password from $TRELLIS_CACHE_PASSWORD)")
    add = sub.add_parser("adduser", help="append a user to a users file (password read from stdin)")
    add.add_argument("--users", required=True, type=Path)
    add.add_argument("name")
    add.add_argument("--perms", default="pull", help=f"comma-separated, of {', '.join(PERMS)}")
    return p


def serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from registry_cache.server import CacheConfig, make_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    host, _, port = args.listen.rpartition(":")
    config = CacheConfig(storage=args.storage, users_file=args.users, insecure_registries=set(args.upstream),
                         pull_through=args.pull_through, token_ttl=args.token_ttl)
    if not args.users:
        print("trellis cache: --users is required (the cache is private)", file=sys.stderr)
        return 2
    web.run_app(make_app(config), host=host or "127.0.0.1", port=int(port), print=None,
                access_log=logging.getLogger("registry_cache.access"))
    return 0


async def stage_request(args: argparse.Namespace, password: str | None) -> int:
    import aiohttp

    body = {"ref": args.ref, **({"username": args.username, "password": password} if args.username else {})}
    from images.registry import basic_header

    password_env = os.environ.get("TRELLIS_CACHE_PASSWORD", "")
    headers = {"Authorization": basic_header(args.cache_user, password_env)} if args.cache_user else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        try:
            async with session.post(f"{args.cache.rstrip('/')}/stage?progress=1", json=body) as resp:
                if resp.status != 200:
                    error = (await resp.json(content_type=None))["errors"][0]
                    print(f"stage failed: {error['code']}: {error['message']}", file=sys.stderr)
                    return 1
                async for line in resp.content:
                    event = json.loads(line)
                    if "result" in event:
                        print(event["result"]["reference"])
                        return 0
                    if "error" in event:
                        print(f"stage failed: {event['error']['code']}: {event['error']['message']}",
                              file=sys.stderr)
                        return 1
                    print(progress_text(event), file=sys.stderr)
        except aiohttp.ClientError as exc:
            print(f"stage failed: cannot reach the cache at {args.cache}: {exc}", file=sys.stderr)
    return 1


def progress_text(event: dict) -> str:
    kind = event.get("event")
    if kind == "resolved":
        return f"resolved {event['ref']} -> {event['digest']}"
    if kind == "blobs":
        return f"{event['total']} blobs, {event['missing']} to copy ({event['bytes']} bytes)"
    if kind == "blob":
        return f"copied {event['digest']} ({event['size']} bytes)"
    return f"pinned {event.get('name')}@{event.get('digest')}"


def adduser(args: argparse.Namespace) -> int:
    perms = [p for p in args.perms.split(",") if p]
    if not perms or any(p not in PERMS for p in perms):
        print(f"trellis cache adduser: perms must be among {', '.join(PERMS)}", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
    with open(args.users, "a") as f:
        f.write(f"{args.name}:{hash_password(password)}:{','.join(perms)}\n")
    return 0


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.cmd == "serve":
        return serve(args)
    if args.cmd == "adduser":
        return adduser(args)
    if args.password_stdin and not args.username:
        print("trellis cache stage: --password-stdin needs --username", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    return asyncio.run(stage_request(args, password))
