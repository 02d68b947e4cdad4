"""Pins: the staged images the cache keeps and serves, one JSON file each under `pins/`."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Pin:
    """One staging: `name@digest`, what it came from, who staged it, and every digest it keeps alive."""

    name: str
    digest: str
    media_type: str
    source: str  # the upstream reference that was staged (never any credential)
    staged_by: str
    staged_at: float
    tag: str | None = None
    manifests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def reference(self, host: str) -> str:
        return f"{host}/{self.name}@{self.digest}"

    def public(self) -> dict:
        return asdict(self)


class PinStore:
    """All pins, loaded at start-up (no upstream needed), written atomically."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "pins"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pins: dict[str, Pin] = {}
        for path in sorted(self.dir.glob("*.json")):
            pin = Pin(**json.loads(path.read_text()))
            self.pins[pin.id] = pin

    def add(self, pin: Pin) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".pin-")
        with os.fdopen(fd, "w") as f:
            json.dump(pin.public(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / f"{pin.id}.json")
        self.pins[pin.id] = pin

    def remove(self, pin_id: str) -> Pin | None:
        pin = self.pins.pop(pin_id, None)
        if pin:
            (self.dir / f"{pin_id}.json").unlink(missing_ok=True)
        return pin

    def resolve(self, name: str, tag: str) -> str | None:
        """The digest the newest pin of `name` with `tag` points to."""
        found = [p for p in self.pins.values() if p.name == name and p.tag == tag]
        return max(found, key=lambda p: p.staged_at).digest if found else None

    def tags(self, name: str) -> list[str]:
        return sorted({p.tag for p in self.pins.values() if p.name == name and p.tag})

    def has_name(self, name: str) -> bool:
        return any(p.name == name for p in self.pins.values())

    def serves(self, name: str, digest: str) -> bool:
        """Whether a pin of repository `name` contains `digest` (a manifest or a blob)."""
        pins = (p for p in self.pins.values() if p.name == name)
        return any(digest in p.manifests or digest in p.blobs for p in pins)

    def referenced(self) -> set[str]:
        return {d for p in self.pins.values() for d in (*p.manifests, *p.blobs)}
