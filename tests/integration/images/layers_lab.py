"""Hand-made layer tars for unpacker tests: any entry type, including hostile names and links."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import zstandard

from tests.support.oci_images import OCI_LAYER_TAR, LayoutWriter, OciImage


def entry(name: str, kind: str = "file", data: bytes = b"", target: str = "", mode: int = 0o644,
          major: int = 0, minor: int = 0, xattrs: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes]:
    """A tar entry: kind is file, dir, symlink, hardlink, chr or fifo."""
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = mode, 1_600_000_000
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    info.linkname, info.devmajor, info.devminor = target, major, minor
    info.size = len(data) if kind == "file" else 0
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def layout_with_layer(layout: Path, tar: bytes, tag: str = "v1", diff_id: str | None = None,
                      layer_type: str = OCI_LAYER_TAR) -> OciImage:
    """A one-layer OCI layout around `tar` (stored as is), optionally with a wrong diff_id in the config."""
    writer = LayoutWriter(layout)
    image = writer.image([(tar, tar)], layer_type=layer_type)
    if diff_id:
        _rewrite_config(writer, image, diff_id)
    return writer.finish(image, tag)


def _rewrite_config(writer: LayoutWriter, manifest_desc: dict, diff_id: str) -> None:
    manifest = json.loads(writer.manifests[manifest_desc["digest"]])
    config_path = writer.blob_dir / manifest["config"]["digest"].split(":", 1)[1]
    config = json.loads(config_path.read_bytes())
    config["rootfs"]["diff_ids"] = [diff_id]
    raw = json.dumps(config).encode()
    manifest["config"].update(digest="sha256:" + hashlib.sha256(raw).hexdigest(), size=len(raw))
    (writer.blob_dir / manifest["config"]["digest"].split(":", 1)[1]).write_bytes(raw)
    manifest_desc.update(writer.document(manifest, manifest_desc["mediaType"]))
