"""Image references, repository names, tags and digests (the distribution-spec grammar)."""

from __future__ import annotations

from dataclasses import dataclass

from images.reference import DIGEST_RE, NAME_RE, TAG_RE  # the distribution grammar, defined once
from registry_cache.errors import RegistryError


def is_digest(ref: str) -> bool:
    return DIGEST_RE.fullmatch(ref) is not None


def check_name(name: str) -> str:
    if len(name) > 255 or not NAME_RE.fullmatch(name):
        raise RegistryError(400, "NAME_INVALID", "invalid repository name", {"name": name})
    return name


def check_digest(digest: str) -> str:
    if not is_digest(digest):
        raise RegistryError(400, "DIGEST_INVALID", "invalid or unsupported digest", {"digest": digest})
    return digest


def check_reference(ref: str) -> str:
    """A manifest reference: a tag or a sha256 digest."""
    if ":" in ref:
        return check_digest(ref)
    if not TAG_RE.fullmatch(ref):
        raise RegistryError(400, "TAG_INVALID", "invalid tag", {"tag": ref})
    return ref


@dataclass(frozen=True)
class ImageRef:
    """`registry/repository[:tag][@digest]` — the registry host is required (there is no default)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest if given, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


def parse_image_ref(text: str) -> ImageRef:
    """Parse `[docker://]host[:port]/repo[:tag][@sha256:…]`; raises ValueError with the reason."""
    rest = text.removeprefix("docker://")
    rest, _, digest = rest.partition("@")
    if digest and not is_digest(digest):
        raise ValueError(f"invalid digest {digest!r} in {text!r}")
    registry, slash, path = rest.partition("/")
    if not slash or not ("." in registry or ":" in registry or registry == "localhost"):
        raise ValueError(f"reference {text!r} must start with a registry host (host[:port]/repository)")
    repository, _, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if not NAME_RE.fullmatch(repository) or len(repository) > 255:
        raise ValueError(f"invalid repository name {repository!r} in {text!r}")
    if tag and not TAG_RE.fullmatch(tag):
        raise ValueError(f"invalid tag {tag!r} in {text!r}")
    return ImageRef(registry, repository, tag or (None if digest else "latest"), digest or None)
