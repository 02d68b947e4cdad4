"""Staging through the cache against Debian's docker-registry, pulls with skopeo and oras-py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import oras.provider
import pytest
import requests
from cache_client import CELL, sha256, skopeo_pull, stage, stored_files

from tests.support.cache_server import CacheServer
from tests.support.oci_images import OciImage, build_busybox
from tests.support.upstream_registry import UpstreamRegistry


def test_stage_returns_pinned_reference(cache: CacheServer, upstream_registry: UpstreamRegistry,
                                        oci_busybox_layout: OciImage, tmp_path: Path) -> None:
    resp = stage(cache, f"{upstream_registry.host}/test/busybox:v1")
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["name"] == "test/busybox"
    assert result["digest"] == oci_busybox_layout.digest
    assert result["reference"] == f"{cache.host}/test/busybox@{oci_busybox_layout.digest}"
    assert skopeo_pull(cache, f"test/busybox@{result['digest']}", tmp_path / "by-digest") == result["digest"]
    assert skopeo_pull(cache, "test/busybox:v1", tmp_path / "by-tag") == result["digest"]
    pins = requests.get(f"{cache.url}/pins", auth=CELL, timeout=10).json()
    pin = next(p for p in pins if p["id"] == result["pin"])
    assert pin["staged_by"] == "stager" and pin["source"] == f"{upstream_registry.host}/test/busybox:v1"


def test_multiarch_index_is_staged_whole(cache: CacheServer, upstream_registry: UpstreamRegistry,
                                         oci_multiarch_layout: OciImage, tmp_path: Path) -> None:
    resp = stage(cache, f"{upstream_registry.host}/test/multiarch:v1")
    assert resp.status_code == 200, resp.text
    assert resp.json()["digest"] == oci_multiarch_layout.digest
    for digest, raw in oci_multiarch_layout.manifests.items():
        got = requests.get(f"{cache.url}/v2/test/multiarch/manifests/{digest}", auth=CELL, timeout=10)
        assert got.status_code == 200 and got.content == raw
        assert got.headers["Docker-Content-Digest"] == digest
    dest = tmp_path / "all"
    assert skopeo_pull(cache, "test/multiarch:v1", dest, all_images=True) == oci_multiarch_layout.digest


def test_oras_pulls_verified_content(cache: CacheServer, upstream_registry: UpstreamRegistry,
                                     oci_multilayer_layout: OciImage, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # oras reads ~/.docker/config.json; never the real one
    pinned = stage(cache, f"{upstream_registry.host}/test/multilayer:v1").json()
    reg = oras.provider.Registry(hostname=cache.host, insecure=True)
    reg.auth.set_basic_auth(*CELL)
    url = f"http://{cache.host}/v2/test/multilayer/manifests/{pinned['digest']}"
    resp = reg.do_request(url, "GET", headers={"Accept": oci_multilayer_layout.media_type})
    assert sha256(resp.content) == pinned["digest"]
    manifest = json.loads(resp.content)
    container = reg.get_container(f"{cache.host}/test/multilayer@{pinned['digest']}")
    for desc in [manifest["config"], *manifest["layers"]]:
        blob = reg.get_blob(container, desc["digest"])
        assert blob.status_code == 200 and sha256(blob.content) == desc["digest"]
    assert not (tmp_path / ".docker").exists()


def test_retag_and_outage_keep_the_pinned_digest(tmp_path_factory: pytest.TempPathFactory,
                                                 own_upstream: UpstreamRegistry, tmp_path: Path) -> None:
    first = build_busybox(tmp_path / "first", extra_files={"etc/release": "first\n"})
    second = build_busybox(tmp_path / "second", extra_files={"etc/release": "second\n"})
    own_upstream.push(first, "team/app", "v1")
    server = CacheServer(tmp_path_factory.mktemp("cache-outage"), [own_upstream.host])
    try:
        server.start()
        pinned = stage(server, f"{own_upstream.host}/team/app:v1").json()
        assert pinned["digest"] == first.digest
        own_upstream.push(second, "team/app", "v1")  # the upstream tag moves
        assert skopeo_pull(server, "team/app:v1", tmp_path / "after-retag") == first.digest
        own_upstream.stop_registry()
        server.stop()
        server.start()  # starts and serves with the upstream down
        assert skopeo_pull(server, "team/app:v1", tmp_path / "down-tag") == first.digest
        assert skopeo_pull(server, f"team/app@{first.digest}", tmp_path / "down-digest") == first.digest
    finally:
        server.stop()
        own_upstream.restart()


def test_corrupted_upstream_blob_is_rejected(tmp_path_factory: pytest.TempPathFactory,
                                             own_upstream: UpstreamRegistry, tmp_path: Path) -> None:
    image = build_busybox(tmp_path / "img", extra_files={"etc/corrupt-me": "x\n"})
    own_upstream.push(image, "team/corrupt", "v1")
    layer = image.layer_digests[0]
    path = own_upstream.blob_path(layer)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    server = CacheServer(tmp_path_factory.mktemp("cache-corrupt"), [own_upstream.host])
    try:
        server.start()
        before = stored_files(server.storage)
        resp = stage(server, f"{own_upstream.host}/team/corrupt:v1")
        assert resp.status_code == 502
        error = resp.json()["errors"][0]
        assert error["code"] == "DIGEST_INVALID" and layer in error["message"]
        assert stored_files(server.storage) == before
        assert requests.get(f"{server.url}/pins", auth=CELL, timeout=10).json() == []
        got = requests.get(f"{server.url}/v2/team/corrupt/blobs/{layer}", auth=CELL, timeout=10)
        assert got.status_code == 404 and got.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    finally:
        server.stop()
    assert not any(os.scandir(server.storage / "tmp"))
