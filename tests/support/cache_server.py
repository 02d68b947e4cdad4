"""Run `trellis cache serve` as a real process on 127.0.0.1 for tests (stopped by its pid)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from registry_cache.auth import hash_password
from tests.support.upstream_registry import REPO_ROOT, free_port, wait_listening

# name -> (password, perms)
CACHE_USERS = {"cell": ("cell-pw", "pull"), "stager": ("stager-pw", "pull,stage,admin")}


class CacheServer:
    """One cache process with its own storage dir and users file."""

    def __init__(self, workdir: Path, upstreams: list[str], pull_through: str | None = None) -> None:
        self.workdir = workdir
        self.storage = workdir / "storage"
        self.upstreams, self.pull_through = upstreams, pull_through
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> CacheServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        users = self.workdir / "users"
        if not users.exists():
            lines = [f"{n}:{hash_password(pw)}:{perms}\n" for n, (pw, perms) in CACHE_USERS.items()]
            users.write_text("".join(lines))
        self.port = self.port or free_port()
        cmd = [sys.executable, "-m", "trellis.cli", "cache", "serve", "--listen", self.host,
               "--storage", str(self.storage), "--users", str(users)]
        for upstream in self.upstreams:
            cmd += ["--upstream", upstream]
        if self.pull_through:
            cmd += ["--pull-through", self.pull_through]
        with open(self.workdir / "cache.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        wait_listening(self.port, self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
