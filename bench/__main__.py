"""Run every benchmark in turn (`make bench`, `python -m bench [NAME ...]`, e.g. `python -m bench scheduler`).

Each one runs as `python -m bench.NAME` in its own process with its default arguments, exactly as its
docstring says to run it alone; a failing one is reported and the others still run.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ["garden", "images", "netns", "registry_cache", "scheduler"]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
