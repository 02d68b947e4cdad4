"""Run `trellis garden serve` as a child process with its own directories (demo, benchmarks, tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from garden.client import AsyncClient, Client

REPO = Path(__file__).resolve().parent.parent


class GardenServer:
    """One daemon process: `.socket_path`, `.client()`, `.rootfs` (busybox dir), `.depot`, `.restart()`."""

    def __init__(self, workdir: Path, rootfs: str, extra_args: list[str] | None = None):
        self.workdir = workdir
        self.rootfs = rootfs
        self.socket_path = str(workdir / "garden.sock")
        self.depot = str(workdir / "depot")
        self.store = str(workdir / "store")
        self.log_path = workdir / "daemon.log"
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.cgroup_parent = f"trellis-test-{os.getpid()}-{id(self) % 100000}"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "trellis.cli", "garden", "serve", "--bind-socket", self.socket_path,
                "--depot", self.depot, "--image-store", self.store, "--default-rootfs", self.rootfs,
                "--network-state-dir", str(self.workdir / "network"), "--cgroup-parent", self.cgroup_parent,
                "--log-level", "debug", *self.extra_args]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"garden daemon exited {self.proc.returncode}:\n{self.log()}")
            try:
                self.client().ping()
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"garden daemon did not come up:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the daemon (its helper dies with it), as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    @contextlib.contextmanager
    def running(self) -> Iterator[GardenServer]:
        """Start; afterwards destroy every container the daemon still has (restarting it if killed), stop it."""
        self.start()
        try:
            yield self
        finally:
            if self.proc is None:
                self.start()
            client = self.client()
            for handle in client.list({"garden.state": "all"}):
                client.destroy(handle)
            self.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> Client:
        return Client(self.socket_path, "unix")

    def async_client(self) -> AsyncClient:
        return AsyncClient(self.socket_path, "unix")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""
