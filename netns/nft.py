"""In-process libnftables (python3-nftables): one atomic batch per call."""

from __future__ import annotations

import json

import nftables

from netns.networker import NetworkError


class Nft:
    """A libnftables context. Not thread-safe: use it from one thread."""

    def __init__(self) -> None:
        self._ctx = nftables.Nftables()

    def run(self, cmds: list[str]) -> None:
        """Apply commands as one transaction: all of them or none."""
        rc, _, err = self._ctx.cmd("\n".join(cmds))
        if rc != 0:
            raise NetworkError(f"nftables: {err.strip()}")

    def chains(self, table: str) -> list[str]:
        """Names of the chains in `table ip <table>`."""
        self._ctx.set_json_output(True)
        try:
            rc, out, err = self._ctx.cmd("list chains ip")
        finally:
            self._ctx.set_json_output(False)
        if rc != 0:
            raise NetworkError(f"nftables: {err.strip()}")
        items = json.loads(out).get("nftables", [])
        return [i["chain"]["name"] for i in items if "chain" in i and i["chain"].get("table") == table]
