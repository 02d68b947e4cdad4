"""Image references: `docker://host[:port]/repo#tag` (or `:tag`), `docker://host/repo@sha256:…`,
`docker:///repo#tag` (default registry), `oci:///layout#tag` (or `:tag`, `@sha256:…`), and local directories
or tarballs (plain paths or `raw://path`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from images.provider import ImageError

DOCKER_HUB = "registry-1.docker.io"
NAME_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
HOST_RE = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?")


@dataclass(frozen=True)
class ImageRef:
    """A parsed reference. `kind` is "docker", "oci" or "local"; `reference` is a tag or a digest."""

    kind: str
    registry: str = ""
    repository: str = ""
    reference: str = ""
    path: str = ""

    @property
    def is_digest(self) -> bool:
        return self.reference.startswith("sha256:")

    def __str__(self) -> str:
        if self.kind == "docker":
            sep = "@" if self.is_digest else ":"
            return f"docker://{self.registry}/{self.repository}{sep}{self.reference}"
        if self.kind == "oci":
            return f"oci://{self.path}" + (f"#{self.reference}" if self.reference else "")
        return self.path


def _split_reference(rest: str, fragment: str, text: str) -> tuple[str, str]:
    """(repository-or-path, tag-or-digest) from `repo@sha256:…`, `repo:tag` or `repo#tag`."""
    rest, at, digest = rest.partition("@")
    reference = digest if at else fragment
    if at and fragment:
        raise ImageError(f"image {text}: give either a tag or a digest, not both")
    if reference and not (DIGEST_RE.fullmatch(reference) or TAG_RE.fullmatch(reference)):
        raise ImageError(f"image {text}: invalid tag or digest {reference!r}")
    return rest, reference


def parse(text: str, default_registry: str = DOCKER_HUB) -> ImageRef:
    """Parse a rootfs URI; raises ImageError naming the reference and what is wrong with it."""
    if text.startswith("docker://"):
        return _parse_docker(text, default_registry)
    if text.startswith("oci://"):
        parts = urlsplit(text)
        path, reference = _split_reference(parts.path, parts.fragment, text)
        if not reference and ":" in path.rsplit("/", 1)[-1]:  # oci:///layout:tag (skopeo's form)
            path, _, reference = path.rpartition(":")
            if not TAG_RE.fullmatch(reference):
                raise ImageError(f"image {text}: invalid tag {reference!r}")
        if parts.netloc or not path.startswith("/"):
            raise ImageError(f"image {text}: oci:// needs an absolute layout path (oci:///path/to/layout#tag)")
        return ImageRef("oci", path=path, reference=reference)
    path = text.removeprefix("raw://")
    if not path.startswith("/"):
        raise ImageError(f"image {text}: unsupported reference (docker://, oci:// or an absolute path)")
    return ImageRef("local", path=path)


def _parse_docker(text: str, default_registry: str) -> ImageRef:
    body, _, fragment = text[len("docker://"):].partition("#")
    host, slash, rest = body.partition("/")
    if not slash:
        raise ImageError(f"image {text}: expected docker://host/repository#tag")
    if "@" in host:
        raise ImageError("image docker://…: credentials in the reference are not supported (use username/password)")
    host = host or default_registry
    if not HOST_RE.fullmatch(host):
        raise ImageError(f"image {text}: invalid registry host {host!r}")
    rest, reference = _split_reference(rest, fragment, text)
    if ":" in rest:  # docker://host/repo:tag is accepted too (a digest wins over the tag)
        rest, _, tag = rest.rpartition(":")
        if not TAG_RE.fullmatch(tag) or fragment:
            raise ImageError(f"image {text}: invalid tag {tag!r}")
        reference = reference or tag
    if host == DOCKER_HUB and "/" not in rest:
        rest = f"library/{rest}"
    if len(rest) > 255 or not NAME_RE.fullmatch(rest):
        raise ImageError(f"image {text}: invalid repository name {rest!r}")
    return ImageRef("docker", registry=host, repository=rest, reference=reference or "latest")
