"""Pure logic of images/: references, manifests, chain ids, platform selection."""

from __future__ import annotations

import json

import pytest

from images import manifest
from images.provider import ImageError
from images.reference import ImageRef, parse
from images.registry import is_loopback

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("text, expected", [
    ("docker://127.0.0.1:5000/test/busybox#v1", ImageRef("docker", "127.0.0.1:5000", "test/busybox", "v1")),
    ("docker://reg.example:5000/app:v2", ImageRef("docker", "reg.example:5000", "app", "v2")),
    (f"docker://reg.example/app@{DIGEST}", ImageRef("docker", "reg.example", "app", DIGEST)),
    (f"docker://reg.example/app:v1@{DIGEST}", ImageRef("docker", "reg.example", "app", DIGEST)),
    ("docker://reg.example/app", ImageRef("docker", "reg.example", "app", "latest")),
    ("docker:///busybox#1.36", ImageRef("docker", "registry-1.docker.io", "library/busybox", "1.36")),
    ("docker:///org/app", ImageRef("docker", "registry-1.docker.io", "org/app", "latest")),
    ("oci:///srv/layout#v1", ImageRef("oci", path="/srv/layout", reference="v1")),
    ("oci:///srv/layout:v1", ImageRef("oci", path="/srv/layout", reference="v1")),
    ("oci:///srv/layout", ImageRef("oci", path="/srv/layout")),
    (f"oci:///srv/layout@{DIGEST}", ImageRef("oci", path="/srv/layout", reference=DIGEST)),
    ("/var/rootfs", ImageRef("local", path="/var/rootfs")),
    ("raw:///var/rootfs.tar", ImageRef("local", path="/var/rootfs.tar")),
])
def test_parse(text: str, expected: ImageRef) -> None:
    assert parse(text) == expected


def test_default_registry_is_configurable_and_str_round_trips() -> None:
    ref = parse("docker:///team/app#v3", default_registry="127.0.0.1:5001")
    assert ref == ImageRef("docker", "127.0.0.1:5001", "team/app", "v3")
    assert str(ref) == "docker://127.0.0.1:5001/team/app:v3"
    assert parse(str(ref)) == ref


@pytest.mark.parametrize("text", ["docker://h/a#v1@x", f"docker://h/a@{DIGEST}#v1", "docker://h/a@sha256:12",
                                  "docker://bad host/a", "ftp://x/y", "oci://host/path#v1"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ImageError, match="image"):
        parse(text)


def test_loopback_registries_use_plain_http() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:80")
    assert not is_loopback("registry.example:5000") and not is_loopback("10.0.0.1")


def test_chain_ids_follow_the_oci_formula() -> None:
    a, b = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    assert manifest.chain_ids([a, b]) == [a, manifest.sha256(f"{a} {b}".encode())]


def test_load_rejects_bad_documents() -> None:
    with pytest.raises(manifest.ManifestError, match="not JSON"):
        manifest.load(b"{nope")
    with pytest.raises(manifest.ManifestError, match="unknown manifest media type"):
        manifest.load(json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode())
    with pytest.raises(manifest.ManifestError, match="schemaVersion 2"):
        manifest.load(json.dumps({"schemaVersion": 1, "mediaType": manifest.DOCKER_MANIFEST}).encode())


def test_platform_selection_and_plan() -> None:
    os_, arch = manifest.host_platform()
    other = {"mediaType": manifest.OCI_MANIFEST, "digest": DIGEST, "size": 1,
             "platform": {"os": os_, "architecture": "other"}}
    mine = dict(other, digest="sha256:" + "b" * 64, platform={"os": os_, "architecture": arch})
    assert manifest.select_platform({"manifests": [other, mine]}).digest == mine["digest"]
    with pytest.raises(manifest.ManifestError, match=f"no {os_}/{arch}"):
        manifest.select_platform({"manifests": [other]})
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": DIGEST, "size": 5}
    doc = {"config": {"mediaType": manifest.CONFIG_TYPES[0], "digest": DIGEST, "size": 2}, "layers": [layer]}
    config = {"rootfs": {"diff_ids": [DIGEST]},
              "config": {"Env": ["A=1"], "WorkingDir": "/w", "User": "1000", "Cmd": ["run"]}}
    plan = manifest.plan("sha256:" + "c" * 64, doc, json.dumps(config).encode())
    assert plan.layers[0].compression == "zstd" and plan.layers[0].chain_id == DIGEST
    assert (plan.config.env, plan.config.working_dir, plan.config.user, plan.config.cmd) == (
        ["A=1"], "/w", "1000", ["run"])
    with pytest.raises(manifest.ManifestError, match="1 layers"):
        manifest.plan(DIGEST, doc, json.dumps({"rootfs": {"diff_ids": []}}).encode())
