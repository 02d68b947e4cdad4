"""Image references, repository names, tags and digests (the distribution-spec grammar)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from images.reference import DIGEST_RE, NAME_RE, TAG_RE  # the distribution grammar, defined once
from registry_cache.errors import blob_unknown, digest_invalid, manifest_unknown, name_invalid, tag_invalid

# The OCI digest grammar (image-spec descriptor.md) and the algorithms distribution accepts, with their hex lengths.
DIGEST_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def is_digest(ref: str) -> bool:
    """A sha256 digest: the only kind the cache stores and serves."""
    return DIGEST_RE.fullmatch(ref) is not None


def digest_problem(text: str) -> str | None:
    """Why `text` is not a valid digest, or None when it is one (of any algorithm in DIGEST_HEX_LENGTHS)."""
    if not DIGEST_GRAMMAR.fullmatch(text):
        return "not a digest (algorithm:encoded)"
    algorithm, _, encoded = text.partition(":")
    length = DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        return f"unsupported digest algorithm {algorithm!r}"
    if len(encoded) != length or not all(c in "0123456789abcdef" for c in encoded):
        return f"a {algorithm} digest is {length} lowercase hex digits"
    return None


def check_name(name: str) -> str:
    if len(name) > 255 or not NAME_RE.fullmatch(name):
        raise name_invalid(name)
    return name


def check_digest(digest: str) -> str:
    """A digest a write names (a pushed manifest's, `?digest=`, `?mount=`): DIGEST_INVALID unless valid."""
    if problem := digest_problem(digest):
        raise digest_invalid(digest, problem)
    return digest


def blob_digest(text: str) -> str:
    """The `<digest>` of a blob URL: not digest-shaped names no blob (404), a bad digest is DIGEST_INVALID (400)."""
    if not DIGEST_GRAMMAR.fullmatch(text):
        raise blob_unknown(text, "not a digest (algorithm:encoded)")
    return check_digest(text)


def manifest_reference(name: str, ref: str) -> str:
    """The `<reference>` of a manifest read or delete: anything but a tag or a valid digest names no manifest."""
    if ":" in ref:
        problem = digest_problem(ref)
    else:
        problem = None if TAG_RE.fullmatch(ref) else "not a valid tag"
    if problem:
        raise manifest_unknown(name, ref, problem)
    return ref


def push_reference(ref: str) -> str:
    """The `<reference>` of a manifest push: a malformed digest is DIGEST_INVALID, a malformed tag TAG_INVALID."""
    if ":" in ref:
        return check_digest(ref)
    if not TAG_RE.fullmatch(ref):
        raise tag_invalid(ref)
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
