"""How the cache reads the `<reference>` and `<digest>` of registry URLs, and which error each bad one gets."""

from __future__ import annotations

import pytest

from registry_cache.errors import RegistryError
from registry_cache.reference import blob_digest, check_digest, digest_problem, manifest_reference, push_reference

SHA256 = "sha256:" + "a" * 64
SHA384 = "sha384:" + "b" * 96
SHA512 = "sha512:" + "c" * 128


def error_of(call, *args) -> tuple[int, str]:
    with pytest.raises(RegistryError) as info:
        call(*args)
    return info.value.status, info.value.code


@pytest.mark.parametrize("digest", [SHA256, SHA384, SHA512])
def test_digests_of_the_algorithms_distribution_accepts_are_valid(digest: str) -> None:
    assert digest_problem(digest) is None
    assert check_digest(digest) == blob_digest(digest) == manifest_reference("a/b", digest) == digest
    assert push_reference(digest) == digest


@pytest.mark.parametrize(("text", "problem"), [
    ("sha256:abc", "a sha256 digest is 64 lowercase hex digits"),
    ("sha256:" + "A" * 64, "a sha256 digest is 64 lowercase hex digits"),
    ("sha256:" + "a" * 65, "a sha256 digest is 64 lowercase hex digits"),
    ("sha256:totallywrong", "a sha256 digest is 64 lowercase hex digits"),
    ("md5:" + "0" * 32, "unsupported digest algorithm 'md5'"),
    ("SHA256:" + "a" * 64, "not a digest (algorithm:encoded)"),
    ("notadigest", "not a digest (algorithm:encoded)"),
    ("sha256:", "not a digest (algorithm:encoded)"),
])
def test_digest_problems_say_what_is_wrong(text: str, problem: str) -> None:
    assert digest_problem(text) == problem
    assert error_of(check_digest, text) == (400, "DIGEST_INVALID")


def test_a_blob_url_that_holds_no_digest_names_no_blob() -> None:
    assert error_of(blob_digest, "notadigest") == (404, "BLOB_UNKNOWN")
    assert error_of(blob_digest, "SHA256:" + "a" * 64) == (404, "BLOB_UNKNOWN")
    assert error_of(blob_digest, "sha256:abc") == (400, "DIGEST_INVALID")  # digest-shaped: as distribution answers
    assert error_of(blob_digest, "md5:0123") == (400, "DIGEST_INVALID")


@pytest.mark.parametrize("ref", [".INVALID_MANIFEST_NAME", "bad tag", "a" * 129, "-dash", "sha256:abc",
                                 "sha256:totallywrong", "md5:" + "0" * 32, ""])
def test_a_malformed_manifest_reference_names_no_manifest(ref: str) -> None:
    with pytest.raises(RegistryError) as info:
        manifest_reference("test/app", ref)
    assert (info.value.status, info.value.code) == (404, "MANIFEST_UNKNOWN")
    assert info.value.detail == {"name": "test/app", "reference": ref}


@pytest.mark.parametrize(("ref", "code"), [(".INVALID_MANIFEST_NAME", "TAG_INVALID"), ("a" * 129, "TAG_INVALID"),
                                           ("sha256:totallywrong", "DIGEST_INVALID"), ("md5:0", "DIGEST_INVALID")])
def test_a_push_to_a_malformed_reference_is_a_bad_request(ref: str, code: str) -> None:
    assert error_of(push_reference, ref) == (400, code)


def test_tags_are_references() -> None:
    for tag in ("v1", "latest", "V1.0_rc-2", "_x", "a" * 128):
        assert manifest_reference("a", tag) == push_reference(tag) == tag
