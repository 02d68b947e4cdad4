"""Access control, private upstreams with token auth, credentials never stored (route errors: test_cache_errors)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cache_client import CELL, STAGER, sha256, stage, stored_files

from tests.support.cache_server import CACHE_USERS, CacheServer
from tests.support.oci_images import OciImage
from tests.support.upstream_registry import REPO_ROOT, UpstreamRegistry

UPSTREAM_USER, UPSTREAM_PASSWORD = "bob", "pw-7f3a9c-never-stored"


@pytest.fixture(scope="module")
def private_upstream(tmp_path_factory: pytest.TempPathFactory,
                     oci_busybox_layout: OciImage) -> Iterator[UpstreamRegistry]:
    """A token-auth upstream whose only user has a password we can grep for."""
    registry = UpstreamRegistry(tmp_path_factory.mktemp("private-upstream"), token_auth=True,
                                users={UPSTREAM_USER: UPSTREAM_PASSWORD})
    try:
        registry.start()
        registry.push(oci_busybox_layout, "private/app", "v1")
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory: pytest.TempPathFactory,
                  private_upstream: UpstreamRegistry) -> Iterator[CacheServer]:
    server = CacheServer(tmp_path_factory.mktemp("private-cache"), [private_upstream.host])
    try:
        yield server.start()
    finally:
        server.stop()


def error_of(resp: requests.Response) -> dict:
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.json()["errors"][0]


def test_wrong_credentials_clear_error_nothing_stored(private_cache: CacheServer,
                                                     private_upstream: UpstreamRegistry) -> None:
    before = stored_files(private_cache.storage)
    ref = f"{private_upstream.host}/private/app:v1"
    for username, password in ((UPSTREAM_USER, "wrong"), (None, None)):
        resp = stage(private_cache, ref, username, password)
        assert resp.status_code == 403
        error = error_of(resp)
        assert error["code"] == "DENIED" and private_upstream.host in error["message"]
    assert stored_files(private_cache.storage) == before


def test_private_image_staged_and_credentials_never_on_disk(private_cache: CacheServer,
                                                            private_upstream: UpstreamRegistry,
                                                            oci_busybox_layout: OciImage) -> None:
    resp = stage(private_cache, f"{private_upstream.host}/private/app:v1", UPSTREAM_USER, UPSTREAM_PASSWORD)
    assert resp.status_code == 200, resp.text
    assert resp.json()["digest"] == oci_busybox_layout.digest
    layer = oci_busybox_layout.layer_digests[0]
    got = requests.get(f"{private_cache.url}/v2/private/app/blobs/{layer}", auth=CELL, timeout=10)
    assert got.status_code == 200 and len(got.content) == oci_busybox_layout.blobs[layer]
    basic = base64.b64encode(f"{UPSTREAM_USER}:{UPSTREAM_PASSWORD}".encode())
    needles = [UPSTREAM_PASSWORD.encode(), basic, b"Bearer ", b"eyJ"]  # eyJ: any JWT from the token server
    files = [p for p in private_cache.storage.rglob("*") if p.is_file()]
    files.append(private_cache.workdir / "cache.log")
    for path in files:
        data = path.read_bytes()
        if path.parent.name == "sha256" and path.parent.parent.name == "blobs":
            assert sha256(data).endswith(path.name), path  # exactly the upstream content, nothing added
            assert UPSTREAM_PASSWORD.encode() not in data
        else:
            assert not any(n in data for n in needles), path


def test_anonymous_and_unprivileged_clients_are_refused(private_cache: CacheServer) -> None:
    resp = requests.get(f"{private_cache.url}/v2/", timeout=10)
    assert resp.status_code == 401 and error_of(resp)["code"] == "UNAUTHORIZED"
    assert resp.headers["WWW-Authenticate"].startswith(f'Bearer realm="http://{private_cache.host}/token"')
    resp = requests.get(f"{private_cache.url}/v2/private/app/manifests/v1", auth=("cell", "nope"), timeout=10)
    assert resp.status_code == 401
    resp = requests.post(f"{private_cache.url}/stage", json={"ref": "127.0.0.1:1/x:y"}, auth=CELL, timeout=10)
    assert resp.status_code == 403 and error_of(resp)["code"] == "DENIED"
    resp = requests.post(f"{private_cache.url}/gc", auth=CELL, timeout=10)
    assert resp.status_code == 403


def test_token_flow_gives_a_bearer_token(private_cache: CacheServer) -> None:
    resp = requests.get(f"{private_cache.url}/token", params={"service": "trellis-cache",
                                                              "scope": "repository:private/app:pull"},
                        auth=CELL, timeout=10)
    assert resp.status_code == 200
    tok = resp.json()["token"]
    headers = {"Authorization": f"Bearer {tok}"}
    assert requests.get(f"{private_cache.url}/v2/", headers=headers, timeout=10).status_code == 200
    bad = {"Authorization": f"Bearer {tok[:-2]}xx"}
    assert requests.get(f"{private_cache.url}/v2/", headers=bad, timeout=10).status_code == 401
    assert requests.get(f"{private_cache.url}/token", timeout=10).status_code == 401


@pytest.mark.parametrize("body", [b"not json", b'{"ref": 5}', b'{"nothing": 1}',
                                  b'{"ref": "no-registry-host"}', b'{"ref": "127.0.0.1:1/UPPER:v1"}'])
def test_bad_stage_requests_are_refused_cleanly(private_cache: CacheServer, body: bytes) -> None:
    before = stored_files(private_cache.storage)
    resp = requests.post(f"{private_cache.url}/stage", data=body, auth=STAGER, timeout=10)
    assert resp.status_code == 400
    assert error_of(resp)["code"] in ("INVALID_REQUEST", "NAME_INVALID")
    assert stored_files(private_cache.storage) == before


def test_unreachable_upstream_is_a_clear_error(private_cache: CacheServer) -> None:
    from tests.support.upstream_registry import free_port

    resp = stage(private_cache, f"127.0.0.1:{free_port()}/some/app:v1")
    assert resp.status_code == 502
    assert "unreachable" in error_of(resp)["message"]


def test_cli_stage_prints_the_pinned_reference(private_cache: CacheServer, private_upstream: UpstreamRegistry,
                                               oci_busybox_layout: OciImage) -> None:
    env = dict(os.environ, TRELLIS_CACHE_USER="stager", TRELLIS_CACHE_PASSWORD=CACHE_USERS["stager"][0])
    cmd = [sys.executable, "-m", "trellis.cli", "cache", "stage", f"{private_upstream.host}/private/app:v1",
           "--username", UPSTREAM_USER, "--password-stdin", "--cache", private_cache.url]
    done = subprocess.run(cmd, input=UPSTREAM_PASSWORD + "\n", capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{private_cache.host}/private/app@{oci_busybox_layout.digest}"
    assert "resolved" in done.stderr and "pinned" in done.stderr
    done = subprocess.run([*cmd[:-5], "--cache", private_cache.url], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 1 and "DENIED" in done.stderr


def test_head_and_range(private_cache: CacheServer, private_upstream: UpstreamRegistry,
                        oci_busybox_layout: OciImage) -> None:
    stage(private_cache, f"{private_upstream.host}/private/app:v1", UPSTREAM_USER, UPSTREAM_PASSWORD)
    base = f"{private_cache.url}/v2/private/app"
    head = requests.head(f"{base}/manifests/v1", auth=CELL, timeout=10,
                         headers={"Accept": oci_busybox_layout.media_type})
    assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == oci_busybox_layout.digest
    assert int(head.headers["Content-Length"]) == len(oci_busybox_layout.manifests[oci_busybox_layout.digest])
    assert head.headers["Content-Type"] == oci_busybox_layout.media_type
    refused = requests.get(f"{base}/manifests/v1", auth=CELL, timeout=10,
                           headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert refused.status_code == 404 and error_of(refused)["code"] == "MANIFEST_UNKNOWN"
    layer = oci_busybox_layout.layer_digests[0]
    part = requests.get(f"{base}/blobs/{layer}", auth=CELL, timeout=10, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["Content-Range"] == f"bytes 0-99/{oci_busybox_layout.blobs[layer]}"
    head = requests.head(f"{base}/blobs/{layer}", auth=CELL, timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == oci_busybox_layout.blobs[layer]
    tags = requests.get(f"{base}/tags/list", auth=CELL, timeout=10)
    assert tags.json() == {"name": "private/app", "tags": ["v1"]}


def test_pinned_blobs_are_not_served_under_other_names(private_cache: CacheServer,
                                                      oci_busybox_layout: OciImage) -> None:
    layer = oci_busybox_layout.layer_digests[0]
    resp = requests.get(f"{private_cache.url}/v2/other/name/blobs/{layer}", auth=CELL, timeout=10)
    assert resp.status_code == 404 and error_of(resp)["code"] == "BLOB_UNKNOWN"


def test_storage_has_no_temp_leftovers(private_cache: CacheServer) -> None:
    assert not any((Path(private_cache.storage) / "tmp").iterdir())
