"""Pull-through (off by default) with single-flight, and unpin + GC."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cache_client import CELL, STAGER, sha256, skopeo_pull, stage

from tests.support.cache_server import CacheServer
from tests.support.oci_images import OciImage, build_busybox
from tests.support.upstream_registry import UpstreamRegistry


@pytest.fixture(scope="module")
def pull_through_cache(tmp_path_factory: pytest.TempPathFactory,
                       own_upstream: UpstreamRegistry) -> Iterator[CacheServer]:
    server = CacheServer(tmp_path_factory.mktemp("pt-cache"), [own_upstream.host], pull_through=own_upstream.host)
    try:
        yield server.start()
    finally:
        server.stop()


def test_pull_through_is_off_by_default(cache: CacheServer, upstream_registry: UpstreamRegistry) -> None:
    resp = requests.get(f"{cache.url}/v2/test/multilayer/manifests/v1", auth=CELL, timeout=10)
    assert resp.status_code == 404 and resp.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_twenty_concurrent_cold_pulls_fetch_each_blob_once(pull_through_cache: CacheServer,
                                                           own_upstream: UpstreamRegistry, tmp_path: Path) -> None:
    image = build_busybox(tmp_path / "img", extra_files={"etc/cold": "twenty pulls\n"})
    own_upstream.push(image, "team/cold", "v1")
    with ThreadPoolExecutor(20) as pool:
        digests = list(pool.map(lambda i: skopeo_pull(pull_through_cache, "team/cold:v1", tmp_path / f"p{i}"),
                                range(20)))
    assert digests == [image.digest] * 20
    for blob in image.blobs:
        assert own_upstream.blob_gets(blob, "team/cold") == 1, blob
    again = skopeo_pull(pull_through_cache, f"team/cold@{image.digest}", tmp_path / "warm")
    assert again == image.digest
    assert all(own_upstream.blob_gets(blob, "team/cold") == 1 for blob in image.blobs)


def test_concurrent_raw_blob_gets_share_one_fetch(pull_through_cache: CacheServer,
                                                  own_upstream: UpstreamRegistry, tmp_path: Path) -> None:
    image = build_busybox(tmp_path / "img", extra_files={"etc/raw": "raw gets\n"})
    own_upstream.push(image, "team/raw", "v1")
    layer = image.layer_digests[0]
    url = f"{pull_through_cache.url}/v2/team/raw/blobs/{layer}"
    with ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(lambda _: requests.get(url, auth=CELL, timeout=30).content, range(20)))
    assert {sha256(b) for b in bodies} == {layer}
    assert own_upstream.blob_gets(layer, "team/raw") == 1


def test_pull_through_rejects_a_corrupted_blob(pull_through_cache: CacheServer,
                                               own_upstream: UpstreamRegistry, tmp_path: Path) -> None:
    image = build_busybox(tmp_path / "img", extra_files={"etc/bad": "bad\n"})
    own_upstream.push(image, "team/bad", "v1")
    layer = image.layer_digests[0]
    path = own_upstream.blob_path(layer)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    url = f"{pull_through_cache.url}/v2/team/bad/blobs/{layer}"
    with pytest.raises(requests.exceptions.RequestException):
        resp = requests.get(url, auth=CELL, timeout=30)
        resp.raise_for_status()
        assert sha256(resp.content) == layer  # a cut body or a wrong digest must not look like success
    assert not (pull_through_cache.storage / "blobs" / "sha256" / layer.split(":")[1]).exists()


def test_unpin_and_gc_keep_shared_blobs(tmp_path_factory: pytest.TempPathFactory, own_upstream: UpstreamRegistry,
                                        tmp_path: Path) -> None:
    shared = build_busybox(tmp_path / "shared", extra_files={"etc/gc": "shared\n"})
    alone = build_busybox(tmp_path / "alone", extra_files={"etc/gc": "alone\n"})
    own_upstream.push(shared, "gc/one", "v1")
    own_upstream.push(shared, "gc/two", "v1")
    own_upstream.push(alone, "gc/alone", "v1")
    server = CacheServer(tmp_path_factory.mktemp("gc-cache"), [own_upstream.host])
    try:
        server.start()
        pins = {name: stage(server, f"{own_upstream.host}/gc/{name}:v1").json()["pin"]
                for name in ("one", "two", "alone")}
        blob_dir = server.storage / "blobs" / "sha256"
        assert requests.delete(f"{server.url}/pins/{pins['one']}", auth=STAGER, timeout=10).status_code == 200
        assert requests.delete(f"{server.url}/pins/{pins['alone']}", auth=STAGER, timeout=10).status_code == 200
        result = requests.post(f"{server.url}/gc", auth=STAGER, timeout=10).json()
        assert result["removed"] == 1 + len(alone.blobs)
        assert {p.name for p in blob_dir.iterdir()} == {d.split(":")[1] for d in [shared.digest, *shared.blobs]}
        assert skopeo_pull(server, "gc/two:v1", tmp_path / "two") == shared.digest
        gone = requests.get(f"{server.url}/v2/gc/one/manifests/v1", auth=CELL, timeout=10)
        assert gone.status_code == 404
        assert requests.delete(f"{server.url}/pins/{pins['two']}", auth=STAGER, timeout=10).status_code == 200
        requests.post(f"{server.url}/gc", auth=STAGER, timeout=10)
        assert not any(blob_dir.iterdir())
    finally:
        server.stop()


def test_restaging_an_existing_image_copies_nothing(cache: CacheServer, upstream_registry: UpstreamRegistry,
                                                    oci_busybox_layout: OciImage) -> None:
    ref = f"{upstream_registry.host}/test/busybox:v1"
    stage(cache, ref)
    layer = oci_busybox_layout.layer_digests[0]
    before = upstream_registry.blob_gets(layer, "test/busybox")
    assert stage(cache, ref).json()["digest"] == oci_busybox_layout.digest
    assert upstream_registry.blob_gets(layer, "test/busybox") == before


def test_skopeo_without_credentials_is_refused(pull_through_cache: CacheServer, tmp_path: Path) -> None:
    cmd = ["skopeo", "inspect", "--tls-verify=false", f"docker://{pull_through_cache.host}/team/cold:v1"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin"})
    assert done.returncode != 0 and "valid credentials required" in done.stderr
