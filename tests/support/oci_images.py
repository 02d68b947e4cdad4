"""Reproducible OCI image layouts built offline from Debian's busybox-static.

Every builder writes an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) with fixed mtimes,
sorted entries and uid/gid 0, so the same inputs always give the same digests. Push a layout with
`skopeo copy --preserve-digests oci:DIR:TAG docker://…` (see `upstream_registry.py`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:alice:/home/alice:/bin/sh\n"
GROUP = "root:x:0:\nalice:x:1000:\n"


@dataclass
class OciImage:
    """A built layout: where it is, its tag and the digests a registry will report for it."""

    layout: Path
    tag: str
    digest: str  # the top-level document (manifest, or index for multi-arch images)
    media_type: str
    manifests: dict[str, bytes] = field(default_factory=dict)  # digest -> exact bytes, top-level included
    blobs: dict[str, int] = field(default_factory=dict)  # config + layer digest -> size

    @property
    def layer_digests(self) -> list[str]:
        """Layer digests of every manifest in the image, in order."""
        out: list[str] = []
        for raw in self.manifests.values():
            out += [d["digest"] for d in json.loads(raw).get("layers", []) if d["digest"] not in out]
        return out


@dataclass
class TarEntry:
    """One file, directory or symlink of a layer."""

    path: str
    kind: str = "file"  # file | dir | symlink
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    uid: int = 0
    gid: int = 0


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(entries: list[TarEntry]) -> bytes:
    """An uncompressed, byte-reproducible tar of `entries` (sorted by path, mtime 0)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(entry.path)
            info.mtime, info.uid, info.gid, info.mode = 0, entry.uid, entry.gid, entry.mode
            info.uname = info.gname = ""
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def busybox_entries() -> list[TarEntry]:
    """busybox with its applet symlinks in /bin, users root and alice (uid 1000), /tmp 1777, homes."""
    applets = subprocess.run([str(BUSYBOX), "--list"], check=True, capture_output=True, text=True).stdout
    entries = [
        TarEntry("bin", "dir", mode=0o755),
        TarEntry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755),
        TarEntry("etc", "dir", mode=0o755),
        TarEntry("etc/passwd", data=PASSWD.encode()),
        TarEntry("etc/group", data=GROUP.encode()),
        TarEntry("tmp", "dir", mode=0o1777),
        TarEntry("root", "dir", mode=0o700),
        TarEntry("home", "dir", mode=0o755),
        TarEntry("home/alice", "dir", mode=0o755, uid=1000, gid=1000),
    ]
    names = sorted(set(applets.split()) - {"busybox"})
    entries += [TarEntry(f"bin/{a}", "symlink", target="busybox") for a in names]
    return entries


class LayoutWriter:
    """Writes blobs into an OCI layout directory and records what it wrote."""

    def __init__(self, layout: Path) -> None:
        self.layout = layout
        self.blob_dir = layout / "blobs" / "sha256"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.manifests: dict[str, bytes] = {}
        self.blobs: dict[str, int] = {}

    def blob(self, data: bytes, media_type: str) -> dict:
        """Store `data`; return its descriptor."""
        digest = digest_of(data)
        (self.blob_dir / digest.split(":", 1)[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def document(self, doc: dict, media_type: str) -> dict:
        """Store a manifest or index with its exact bytes; return its descriptor."""
        raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        desc = self.blob(raw, media_type)
        self.manifests[desc["digest"]] = raw
        return desc

    def image(self, layers: list[tuple[bytes, bytes]], arch: str = "amd64", layer_type: str = OCI_LAYER_GZIP,
              entrypoint: list[str] | None = None) -> dict:
        """Write config + layers + manifest. `layers` are (uncompressed tar, stored blob) pairs."""
        layer_descs = [self.blob(stored, layer_type) for _, stored in layers]
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Entrypoint": entrypoint or ["/bin/sh"], "User": "0"},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(tar) for tar, _ in layers]},
            "history": [{"created_by": "tests/support/oci_images.py"} for _ in layers],
        }
        config_desc = self.blob(json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
        self.blobs.update({d["digest"]: d["size"] for d in [config_desc, *layer_descs]})
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                    "layers": layer_descs}
        return self.document(manifest, OCI_MANIFEST)

    def finish(self, top: dict, tag: str) -> OciImage:
        """Write index.json naming `top` as `tag` and return the image."""
        entry = dict(top, annotations={"org.opencontainers.image.ref.name": tag})
        index = {"schemaVersion": 2, "manifests": [entry]}
        (self.layout / "index.json").write_text(json.dumps(index, sort_keys=True))
        return OciImage(self.layout, tag, top["digest"], top["mediaType"], dict(self.manifests),
                        dict(self.blobs))


def gzip_layer(entries: list[TarEntry]) -> tuple[bytes, bytes]:
    tar = layer_tar(entries)
    return tar, gzip.compress(tar, compresslevel=6, mtime=0)


def build_busybox(layout: Path, tag: str = "v1", extra_files: dict[str, str] | None = None) -> OciImage:
    """A one-layer busybox image; `extra_files` ({"etc/x": "text"}) make distinct images."""
    extras = [TarEntry(path, data=text.encode()) for path, text in sorted((extra_files or {}).items())]
    writer = LayoutWriter(layout)
    return writer.finish(writer.image([gzip_layer(busybox_entries() + extras)]), tag)


def build_multilayer(layout: Path, tag: str = "v1") -> OciImage:
    """busybox + /data/{x,keep,opq/old}; then a layer deleting /data/x (`.wh.x`), making /data/opq opaque
    (`.wh..wh..opq`) with a new /data/opq/new, and adding /data/added."""
    base = busybox_entries() + [
        TarEntry("data", "dir", mode=0o755),
        TarEntry("data/x", data=b"removed by a whiteout\n"),
        TarEntry("data/keep", data=b"kept\n"),
        TarEntry("data/opq", "dir", mode=0o755),
        TarEntry("data/opq/old", data=b"hidden by an opaque whiteout\n"),
    ]
    top = [
        TarEntry("data", "dir", mode=0o755),
        TarEntry("data/.wh.x"),
        TarEntry("data/added", data=b"added\n"),
        TarEntry("data/opq", "dir", mode=0o755),
        TarEntry("data/opq/.wh..wh..opq"),
        TarEntry("data/opq/new", data=b"new\n"),
    ]
    writer = LayoutWriter(layout)
    return writer.finish(writer.image([gzip_layer(base), gzip_layer(top)]), tag)


def build_multiarch(layout: Path, tag: str = "v1") -> OciImage:
    """An image index with linux/amd64 and linux/arm64 entries (both carry the host's busybox)."""
    writer = LayoutWriter(layout)
    layer = gzip_layer(busybox_entries())
    entries = []
    for arch in ("amd64", "arm64"):
        desc = writer.image([layer], arch=arch)
        entries.append(dict(desc, platform={"architecture": arch, "os": "linux"}))
    index = writer.document({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, OCI_INDEX)
    return writer.finish(index, tag)


def build_random(layout: Path, size: int, tag: str = "v1", seed: int = 7) -> OciImage:
    """An image with one uncompressed layer holding `size` bytes of seeded random data (for benchmarks)."""
    data = random.Random(seed).randbytes(size)
    tar = layer_tar([TarEntry("blob.bin", data=data)])
    writer = LayoutWriter(layout)
    return writer.finish(writer.image([(tar, tar)], layer_type=OCI_LAYER_TAR), tag)
