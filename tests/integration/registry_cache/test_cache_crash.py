"""kill -9 in the middle of a staging leaves no partial blob visible and no pin."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cache_client import CELL, STAGER, stored_files

from tests.support.cache_server import CacheServer

LAYER = bytes(range(256)) * 4096  # 1 MiB
LAYER_DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG_DIGEST,
               "size": len(CONFIG)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": LAYER_DIGEST,
                "size": len(LAYER)}]}).encode()


class StallingRegistry(BaseHTTPRequestHandler):
    """Serves one image but sends only half of its layer, then waits until the test releases it."""

    release = threading.Event()
    layer_started = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.endswith("/manifests/v1"):
            self.reply(MANIFEST, "application/vnd.oci.image.manifest.v1+json")
        elif self.path.endswith(CONFIG_DIGEST):
            self.reply(CONFIG, "application/octet-stream")
        elif self.path.endswith(LAYER_DIGEST):
            self.send_response(200)
            self.send_header("Content-Length", str(len(LAYER)))
            self.end_headers()
            self.wfile.write(LAYER[: len(LAYER) // 2])
            self.wfile.flush()
            self.layer_started.set()
            self.release.wait(30)
        else:
            self.reply(b"{}", "application/json")

    def reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def stalling_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StallingRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        StallingRegistry.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def test_kill_during_staging_leaves_nothing_visible(tmp_path: Path, stalling_upstream: str) -> None:
    server = CacheServer(tmp_path / "cache", [stalling_upstream])
    server.start()
    try:
        outcome: list[BaseException] = []

        def stage() -> None:
            try:
                requests.post(f"{server.url}/stage", json={"ref": f"{stalling_upstream}/slow/app:v1"},
                              auth=STAGER, timeout=60)
            except requests.exceptions.ConnectionError as exc:
                outcome.append(exc)

        staging = threading.Thread(target=stage)
        staging.start()
        assert StallingRegistry.layer_started.wait(30)
        while not any(p.stat().st_size for p in (server.storage / "tmp").iterdir()):
            time.sleep(0.01)  # wait for the partial layer to reach the temp file
        server.stop(signal.SIGKILL)
        staging.join()
        assert outcome, "the staging request should have died with the cache"
        assert not any(LAYER_DIGEST.split(":")[1] in name for name in stored_files(server.storage))
        server.start()
        assert not any((server.storage / "tmp").iterdir())
        assert requests.get(f"{server.url}/pins", auth=CELL, timeout=10).json() == []
        resp = requests.get(f"{server.url}/v2/slow/app/blobs/{LAYER_DIGEST}", auth=CELL, timeout=10)
        assert resp.status_code == 404
    finally:
        server.stop()
