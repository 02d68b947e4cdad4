"""Helpers for the GATS mirrors: Gomega-like output buffers, shell specs, GATS' createUser."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

from garden import models
from tests.support.oci_images import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    LayoutWriter,
    TarEntry,
    digest_of,
    gzip_layer,
)


class Buffer:
    """A gbytes.Buffer: a thread-safe sink with `say(regex, timeout)` (Eventually(...).Should(Say(...)))."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._cond = threading.Condition()

    def __call__(self, chunk: bytes) -> None:
        with self._cond:
            self._data += chunk
            self._cond.notify_all()

    def text(self) -> str:
        with self._cond:
            return self._data.decode(errors="replace")

    def say(self, pattern: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not re.search(pattern, self._data.decode(errors="replace")):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


def say_in_order(text: str, *patterns: str) -> bool:
    """Successive gbytes.Say calls on one buffer: each match starts after the previous one ended."""
    pos = 0
    for pattern in patterns:
        m = re.compile(pattern).search(text, pos)
        if not m:
            return False
        pos = m.end()
    return True


def sh(script: str, **kw) -> models.ProcessSpec:
    return models.ProcessSpec(path="sh", args=["-c", script], **kw)


def run_process(client, handle: str, spec: models.ProcessSpec) -> tuple[int, str, str]:
    out, err = Buffer(), Buffer()
    code = client.run(handle, spec, stdout=out, stderr=err).wait(60)
    return code, out.text(), err.text()


def run_for_stdout(client, handle: str, spec: models.ProcessSpec) -> str:
    """GATS' runForStdout: the process must exit 0."""
    code, out, err = run_process(client, handle, spec)
    assert code == 0, (code, out, err)
    return out


def create_user(client, handle: str, name: str) -> None:
    """GATS' createUser (`id -u NAME || adduser -D NAME`); Debian's busybox has no adduser applet, so the
    fallback writes /etc/passwd, /etc/group and the home directory the way `adduser -D` would."""
    script = (f"id -u {name} && exit 0; command -v adduser >/dev/null && exec adduser -D {name}; "
              "uid=1000; while grep -q \"^[^:]*:[^:]*:$uid:\" /etc/passwd /etc/group; do uid=$((uid+1)); done; "
              f"echo \"{name}:x:$uid:$uid:Linux User,,,:/home/{name}:/bin/sh\" >> /etc/passwd && "
              f"echo \"{name}:x:$uid:\" >> /etc/group && mkdir -p /home/{name} && chown $uid:$uid /home/{name}")
    code, out, err = run_process(client, handle, sh(script, user="root"))
    assert code == 0, (out, err)


def build_image(layout: Path, layers: list[list[TarEntry]], env: list[str]) -> str:
    """An OCI layout with `layers` (bottom first) and config Env `env`; returns its `oci:///…#v1` URI."""
    writer = LayoutWriter(layout)
    tars = [gzip_layer(entries) for entries in layers]
    layer_descs = [writer.blob(stored, OCI_LAYER_GZIP) for _, stored in tars]
    config = {"architecture": "amd64", "os": "linux", "config": {"Env": env},
              "rootfs": {"type": "layers", "diff_ids": [digest_of(tar) for tar, _ in tars]}}
    config_desc = writer.blob(json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
    manifest = writer.document({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                                "layers": layer_descs}, OCI_MANIFEST)
    writer.finish(manifest, "v1")
    return f"oci://{layout}#v1"
