"""`trellis` — one console script; each subcommand lives in its package's cli module."""

from __future__ import annotations

import importlib
import sys

# subcommand -> module with a `main(argv) -> int`; imported only when used (fast start).
SUBCOMMANDS = {
    "garden": ("garden.cli", "the Garden daemon: trellis garden serve …"),
    "gaol": ("garden.gaol", "container commands against a Garden server (gaol's verbs)"),
    "cache": ("registry_cache.cli", "the private registry cache: serve, stage"),
}


def usage() -> str:
    lines = ["usage: trellis <command> [args]", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    entry = SUBCOMMANDS.get(argv[0])
    if entry is None:
        print(f"trellis: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(entry[0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
