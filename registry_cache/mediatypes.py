"""Manifest media types and how to read descriptors out of manifests and indexes."""

from __future__ import annotations

import json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join(MANIFEST_TYPES)


class ManifestError(ValueError):
    """A manifest that is not JSON, or not a manifest/index we can walk."""


def parse(raw: bytes, content_type: str) -> tuple[str, dict]:
    """Return (media type, document); the media type comes from the body, else from Content-Type."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise ManifestError("only schemaVersion 2 manifests and indexes are supported")
    media_type = doc.get("mediaType") or content_type.split(";")[0].strip()
    if media_type not in MANIFEST_TYPES:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    return media_type, doc


def children(media_type: str, doc: dict) -> list[dict]:
    """Child manifest descriptors of an index (empty for an image manifest)."""
    return list(doc.get("manifests", [])) if media_type in INDEX_TYPES else []


def blob_descriptors(media_type: str, doc: dict) -> list[dict]:
    """Config + layer descriptors of an image manifest (layers with external `urls` are skipped)."""
    if media_type in INDEX_TYPES:
        return []
    descs = [doc["config"], *doc.get("layers", [])] if "config" in doc else list(doc.get("layers", []))
    return [d for d in descs if not d.get("urls")]
