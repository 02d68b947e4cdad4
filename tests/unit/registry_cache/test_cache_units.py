"""Pure logic of the registry cache: references, tokens, the store's commit rules, pins."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from registry_cache import mediatypes
from registry_cache.auth import Authenticator, Identity, hash_password
from registry_cache.errors import RegistryError
from registry_cache.pins import Pin, PinStore
from registry_cache.reference import ImageRef, check_name, parse_image_ref
from registry_cache.store import DigestMismatch, Store

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5000/test/busybox:v1", ImageRef("127.0.0.1:5000", "test/busybox", "v1")),
    ("docker://localhost/app", ImageRef("localhost", "app", "latest")),
    (f"reg.example/a/b@{DIGEST}", ImageRef("reg.example", "a/b", None, DIGEST)),
    (f"reg.example:1/a:v2@{DIGEST}", ImageRef("reg.example:1", "a", "v2", DIGEST)),
])
def test_parse_image_ref(text: str, expected: ImageRef) -> None:
    assert parse_image_ref(text) == expected


@pytest.mark.parametrize("text", ["busybox", "library/busybox:v1", "reg.example/UPPER:v1", "reg.example/a@sha256:12",
                                  "reg.example/a:bad tag", "reg.example/"])
def test_parse_image_ref_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_image_ref(text)


def test_name_checks() -> None:
    assert check_name("a/b-c/d__e") == "a/b-c/d__e"
    for bad, code in (("A", "NAME_INVALID"), ("a//b", "NAME_INVALID")):
        with pytest.raises(RegistryError) as info:
            check_name(bad)
        assert info.value.code == code and info.value.status == 400


def test_tokens_and_passwords(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"cell:{hash_password('pw')}:pull\n# comment\n")
    auth = Authenticator(users, token_ttl=60)
    who = auth.check_password("cell", "pw")
    assert who == Identity("cell", frozenset({"pull"}))
    assert auth.check_password("cell", "nope") is None and auth.check_password("x", "pw") is None
    token = auth.issue(who)
    assert auth.verify(token) == who
    assert auth.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert Authenticator(users).verify(token) is None  # another process key
    auth.ttl = -1
    assert auth.verify(auth.issue(who)) is None


def test_store_commits_only_verified_content(tmp_path: Path) -> None:
    store = Store(tmp_path)
    writer = store.writer()
    writer.write(b"hello")
    with pytest.raises(DigestMismatch):
        writer.verify(DIGEST)
    writer.discard()
    assert not list(store.digests()) and not list(store.tmp_dir.iterdir())
    digest = "sha256:" + hashlib.sha256(b"hello").hexdigest()
    writer = store.writer()
    writer.write(b"hello")
    with pytest.raises(DigestMismatch):
        writer.verify(digest, size=6)
    writer.verify(digest, size=5)
    store.commit(writer, digest)
    assert store.blob_path(digest).read_bytes() == b"hello"


def test_store_start_drops_partial_downloads(tmp_path: Path) -> None:
    store = Store(tmp_path)
    writer = store.writer()
    writer.write(b"partial")
    writer.file.flush()
    Store(tmp_path)  # a restart after a crash
    assert not list(store.tmp_dir.iterdir()) and not list(store.digests())


def test_manifest_round_trip_is_byte_exact(tmp_path: Path) -> None:
    raw = b'{"schemaVersion": 2,  "layers": []}'
    Store(tmp_path).put_manifest(DIGEST, raw, mediatypes.OCI_MANIFEST)
    assert Store(tmp_path).manifest(DIGEST) == (raw, mediatypes.OCI_MANIFEST)


def test_mediatypes_walk() -> None:
    index = {"schemaVersion": 2, "manifests": [{"digest": DIGEST, "size": 1}]}
    media_type, doc = mediatypes.parse(json.dumps(index).encode(), "")
    assert media_type == mediatypes.OCI_INDEX and mediatypes.children(media_type, doc) == index["manifests"]
    manifest = {"schemaVersion": 2, "mediaType": mediatypes.DOCKER_MANIFEST, "config": {"digest": "c"},
                "layers": [{"digest": "l1"}, {"digest": "l2", "urls": ["http://x"]}]}
    media_type, doc = mediatypes.parse(json.dumps(manifest).encode(), "text/plain")
    assert [d["digest"] for d in mediatypes.blob_descriptors(media_type, doc)] == ["c", "l1"]
    with pytest.raises(mediatypes.ManifestError):
        mediatypes.parse(b'{"schemaVersion": 1}', "")


def test_pins_resolve_newest_and_survive_restart(tmp_path: Path) -> None:
    pins = PinStore(tmp_path)
    old = Pin("a/b", DIGEST, mediatypes.OCI_MANIFEST, "r/a/b:v1", "me", time.time() - 10, "v1", [DIGEST], ["x"])
    new = Pin("a/b", "sha256:" + "b" * 64, mediatypes.OCI_MANIFEST, "r/a/b:v1", "me", time.time(), "v1")
    pins.add(old)
    pins.add(new)
    again = PinStore(tmp_path)
    assert again.resolve("a/b", "v1") == new.digest and again.tags("a/b") == ["v1"]
    assert again.serves("a/b", "x") and not again.serves("c/d", "x")
    again.remove(old.id)
    assert PinStore(tmp_path).referenced() == set()
