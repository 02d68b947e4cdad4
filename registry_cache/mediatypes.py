"""Manifest media types and how to read descriptors out of manifests and indexes."""

from __future__ import annotations

from images.manifest import (  # one definition of the media types and of reading a manifest
    ACCEPT,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestError,
)
from images.manifest import load as parse

__all__ = ["ACCEPT", "DOCKER_LIST", "DOCKER_MANIFEST", "INDEX_TYPES", "OCI_INDEX", "OCI_MANIFEST", "ManifestError",
           "blob_descriptors", "children", "parse"]


def children(media_type: str, doc: dict) -> list[dict]:
    """Child manifest descriptors of an index (empty for an image manifest)."""
    return list(doc.get("manifests", [])) if media_type in INDEX_TYPES else []


def blob_descriptors(media_type: str, doc: dict) -> list[dict]:
    """Config + layer descriptors of an image manifest (layers with external `urls` are skipped)."""
    if media_type in INDEX_TYPES:
        return []
    descs = [doc["config"], *doc.get("layers", [])] if "config" in doc else list(doc.get("layers", []))
    return [d for d in descs if not d.get("urls")]
