"""Manifests, indexes and image configs: media types, platform selection, layer plans with chain ids."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass

from images.provider import ImageConfig

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
# layer media type -> compression
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}
MAX_DOCUMENT = 4 << 20
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class ManifestError(ValueError):
    """A manifest, index or config we cannot use; the message says why."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    @classmethod
    def parse(cls, raw: object) -> Descriptor:
        if not isinstance(raw, dict):
            raise ManifestError("descriptor is not an object")
        digest, size = raw.get("digest"), raw.get("size")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise ManifestError(f"unsupported digest {digest!r}")
        if not isinstance(size, int) or size < 0:
            raise ManifestError(f"descriptor {digest} has no valid size")
        return cls(str(raw.get("mediaType", "")), digest, size)


@dataclass(frozen=True)
class Layer:
    """One layer to fetch: its blob, its compression, its uncompressed digest and its chain id."""

    blob: Descriptor
    compression: str
    diff_id: str
    chain_id: str


@dataclass(frozen=True)
class ImagePlan:
    digest: str  # the image manifest's digest
    config: ImageConfig
    layers: tuple[Layer, ...]  # bottom first


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def host_platform() -> tuple[str, str]:
    machine = platform.machine()
    return "linux", ARCHES.get(machine, machine)


def load(raw: bytes, content_type: str = "") -> tuple[str, dict]:
    """(media type, document) of a manifest or index; ManifestError for non-JSON or unknown kinds."""
    if len(raw) > MAX_DOCUMENT:
        raise ManifestError(f"manifest larger than {MAX_DOCUMENT} bytes")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ManifestError("manifest is not JSON") from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object")
    media_type = doc.get("mediaType") or content_type.split(";")[0].strip()
    if not media_type:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in (*MANIFEST_TYPES, *INDEX_TYPES):
        raise ManifestError(f"unknown manifest media type {media_type!r}")
    if doc.get("schemaVersion") != 2:
        raise ManifestError("only schemaVersion 2 manifests are supported")
    return media_type, doc


def select_platform(index: dict) -> Descriptor:
    """The index entry for this host (linux/<arch>); ManifestError if there is none."""
    want_os, want_arch = host_platform()
    for entry in index.get("manifests") or []:
        plat = (entry.get("platform") if isinstance(entry, dict) else None) or {}
        if plat.get("os") == want_os and plat.get("architecture") == want_arch:
            return Descriptor.parse(entry)
    raise ManifestError(f"no {want_os}/{want_arch} manifest in the index")


def image_blobs(manifest: dict) -> tuple[Descriptor, list[tuple[Descriptor, str]]]:
    """(config descriptor, [(layer descriptor, compression)]) of an image manifest."""
    config = Descriptor.parse(manifest.get("config"))
    if config.media_type not in CONFIG_TYPES:
        raise ManifestError(f"unknown config media type {config.media_type!r}")
    layers = []
    for raw in manifest.get("layers") or []:
        desc = Descriptor.parse(raw)
        if desc.media_type not in LAYER_TYPES:
            raise ManifestError(f"unknown layer media type {desc.media_type!r}")
        layers.append((desc, LAYER_TYPES[desc.media_type]))
    if not layers:
        raise ManifestError("image has no layers")
    return config, layers


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain ids: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256(f"{out[-1]} {diff_id}".encode()))
    return out


def plan(manifest_digest: str, manifest: dict, config_raw: bytes) -> ImagePlan:
    """Combine a manifest and its config into the layers to stack and the process config."""
    _, layers = image_blobs(manifest)
    try:
        config = json.loads(config_raw)
        diff_ids = config["rootfs"]["diff_ids"]
        proc = config.get("config") or {}
    except (ValueError, KeyError, TypeError):
        raise ManifestError("image config is not valid JSON with rootfs.diff_ids") from None
    if len(diff_ids) != len(layers) or not all(isinstance(d, str) and d.startswith("sha256:") for d in diff_ids):
        raise ManifestError(f"config lists {len(diff_ids)} diff_ids for {len(layers)} layers")
    image_config = ImageConfig(env=list(proc.get("Env") or []), user=str(proc.get("User") or ""),
                               working_dir=str(proc.get("WorkingDir") or ""),
                               entrypoint=list(proc.get("Entrypoint") or []), cmd=list(proc.get("Cmd") or []))
    return ImagePlan(manifest_digest, image_config, tuple(
        Layer(desc, compression, diff_id, chain) for (desc, compression), diff_id, chain
        in zip(layers, diff_ids, chain_ids(diff_ids), strict=True)))
