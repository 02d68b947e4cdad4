"""Garbage collection: delete every stored blob no pin references (and nothing in use right now)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from registry_cache.pins import PinStore
from registry_cache.store import Store


@dataclass
class GcResult:
    removed: int
    freed_bytes: int
    kept: int


async def collect(store: Store, pins: PinStore, lock: asyncio.Lock) -> GcResult:
    """Mark from the pins, sweep the rest. Holds the staging commit lock so a pin can't appear mid-sweep."""
    async with lock:
        live = pins.referenced() | store.protected()
        removed = freed = kept = 0
        for digest in list(store.digests()):
            if digest in live:
                kept += 1
            else:
                freed += store.delete(digest)
                removed += 1
        return GcResult(removed, freed, kept)
