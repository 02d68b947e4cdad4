"""Debian's docker-registry (distribution 2.8.2) on 127.0.0.1 as a real upstream, plain or with token auth.

Every process started here is stopped by its pid in `stop()`. Blob GETs are counted from the registry's
access log, so tests can assert how often a cache went upstream.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.oci_images import OciImage

REGISTRY_BIN = "/usr/bin/docker-registry"
REPO_ROOT = Path(__file__).resolve().parents[2]
USERS = {"alice": "secret"}
ISSUER, SERVICE = "test-issuer", "test-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def self_signed(certdir: Path) -> tuple[Path, Path]:
    """An RSA key + self-signed certificate for the token issuer."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-token-issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_path, cert_path = certdir / "tok.key", certdir / "tok.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class UpstreamRegistry:
    """One docker-registry process (plus its token server when `token_auth`) under `workdir`."""

    def __init__(self, workdir: Path, token_auth: bool = False, users: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.token_auth = token_auth
        self.users = users or USERS
        self.data = workdir / "data"
        self.log_path = workdir / "registry.log"
        self.port = 0
        self.procs: list[subprocess.Popen] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> UpstreamRegistry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        auth = ""
        if self.token_auth:
            auth = self._start_token_server()
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\nlog: {level: info, fields: {service: upstream}}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.data}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: '{self.host}', secret: trellis-test}}\n{auth}")
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_listening(self.port, proc)
        return self

    def _start_token_server(self) -> str:
        certdir = self.workdir / "certs"
        certdir.mkdir(exist_ok=True)
        key, cert = self_signed(certdir)
        users = self.workdir / "users.json"
        users.write_text(json.dumps(self.users))
        port = free_port()
        cmd = [sys.executable, "-m", "tests.support.token_server", "--port", str(port), "--key", str(key),
               "--cert", str(cert), "--issuer", ISSUER, "--service", SERVICE, "--users", str(users)]
        with open(self.workdir / "token.log", "ab") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_listening(port, proc)
        return (f"auth: {{token: {{realm: 'http://127.0.0.1:{port}/token', service: {SERVICE}, "
                f"issuer: {ISSUER}, rootcertbundle: {cert}}}}}\n")

    def stop(self) -> None:
        """Stop the processes this object started (by pid), newest first."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()

    def stop_registry(self) -> None:
        """Stop only the registry (the token server keeps running); `start_registry` brings it back."""
        proc = self.procs.pop()
        proc.terminate()
        proc.wait(10)

    def restart(self) -> None:
        """Start the registry again on the same port and storage."""
        self.stop()
        self.start()

    def push(self, image: OciImage, repo: str, tag: str | None = None, creds: str | None = None) -> str:
        """Copy `image` into `repo:tag` with skopeo, keeping digests; returns the pushed digest."""
        cmd = ["skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "-q",
               f"oci:{image.layout}:{image.tag}", f"docker://{self.host}/{repo}:{tag or image.tag}"]
        if creds or self.token_auth:
            cmd[2:2] = ["--dest-creds", creds or ":".join(next(iter(self.users.items())))]
        subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, HOME=str(self.workdir)))
        return image.digest

    def blob_gets(self, digest: str, repo: str | None = None) -> int:
        """How many GET requests for `digest` reached the registry (from its access log)."""
        name = re.escape(repo) if repo else r"[^ ]+"
        pattern = re.compile(rf'"GET /v2/{name}/blobs/{re.escape(digest)} HTTP/[0-9.]+" (200|206) ')
        lines = self.log_path.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if pattern.search(line))

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps a blob on disk (to corrupt it on purpose)."""
        hexd = digest.split(":", 1)[1]
        return self.data / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
