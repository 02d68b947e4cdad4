"""Small helpers the cache tests share: stage over HTTP, pull with skopeo, read a storage dir."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import requests

from tests.support.cache_server import CACHE_USERS, CacheServer

STAGER = ("stager", CACHE_USERS["stager"][0])
CELL = ("cell", CACHE_USERS["cell"][0])


def stage(cache: CacheServer, ref: str, username: str | None = None, password: str | None = None
          ) -> requests.Response:
    body = {"ref": ref, **({"username": username, "password": password} if username else {})}
    return requests.post(f"{cache.url}/stage", json=body, auth=STAGER, timeout=60)


def skopeo_pull(cache: CacheServer, ref: str, dest: Path, all_images: bool = False) -> str:
    """Copy `cache.host/ref` into an OCI layout with skopeo as `cell`; returns the digest of what arrived."""
    cmd = ["skopeo", "copy", "-q", "--src-tls-verify=false", "--src-creds", ":".join(CELL),
           *(["--all"] if all_images else []), f"docker://{cache.host}/{ref}", f"oci:{dest}:pulled"]
    env = {"HOME": str(dest.parent), "PATH": "/usr/bin:/bin"}  # skopeo must not find real credentials
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    index = json.loads((dest / "index.json").read_text())
    return index["manifests"][0]["digest"]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored_files(storage: Path) -> set[str]:
    """Committed content and pins (temp files excluded)."""
    return {str(p.relative_to(storage)) for p in storage.rglob("*")
            if p.is_file() and "tmp" not in p.relative_to(storage).parts}
