"""Helpers for netns tests: "containers" are busybox processes in fresh network namespaces.

Processes are cleaned up by their recorded pids. Traffic only goes to loopback and to addresses inside
namespaces the tests made.
"""

from __future__ import annotations

import os
import subprocess
import time

BUSYBOX = "/bin/busybox"


class Sandbox:
    """Processes in new network namespaces (like a container's pid 1) plus servers inside them."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def container(self) -> int:
        """A new netns with loopback up and a sleeping pid in it; returns that pid."""
        proc = self._spawn(["unshare", "--net", BUSYBOX, "sleep", "600"])
        home = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{proc.pid}/ns/net") == home:  # unshare has not run yet
            time.sleep(0.001)
        self.ns(proc.pid, "ip", "link", "set", "lo", "up")
        return proc.pid

    def http_server(self, pid: int, port: int, body: str) -> None:
        """busybox httpd in pid's netns serving `body` at /id."""
        root = os.path.join(self.tmp, f"www-{pid}-{port}")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "id"), "w") as f:
            f.write(body)
        self._spawn(["nsenter", f"--net=/proc/{pid}/ns/net", BUSYBOX, "httpd", "-f", "-p", str(port), "-h", root])

    def ns(self, pid: int, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a busybox applet in pid's netns."""
        return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", BUSYBOX, *argv],
                              capture_output=True, text=True, check=check, timeout=30)

    def cgi_server(self, pid: int, port: int) -> None:
        """busybox httpd in pid's netns answering /cgi-bin/peer with the client's address as it sees it."""
        root = os.path.join(self.tmp, f"cgi-{pid}-{port}")
        os.makedirs(os.path.join(root, "cgi-bin"), exist_ok=True)
        script = os.path.join(root, "cgi-bin", "peer")
        with open(script, "w") as f:
            f.write(f"#!{BUSYBOX} sh\necho 'Content-Type: text/plain'\necho\necho -n $REMOTE_ADDR\n")
        os.chmod(script, 0o755)
        self._spawn(["nsenter", f"--net=/proc/{pid}/ns/net", BUSYBOX, "httpd", "-f", "-p", f"0.0.0.0:{port}",
                     "-h", root])

    def fetch(self, pid: int, ip: str, port: int, path: str = "/id") -> str | None:
        """GET http://ip:port/path from inside pid's netns; None when refused, rejected or timed out."""
        r = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", BUSYBOX, "nc", "-w", "1", ip, str(port)],
                           input=f"GET {path} HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or "\n\n" not in r.stdout:  # text mode turned CRLF into LF
            return None
        return r.stdout.split("\n\n", 1)[1]

    def kill(self, pid: int) -> None:
        for proc in self.procs:
            if proc.pid == pid:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()

    def _spawn(self, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc


def wait_for(fn, what: str, attempts: int = 50):
    """Retry until fn() returns a truthy value (servers start asynchronously); no timing asserts."""
    for _ in range(attempts):
        value = fn()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def our_links(prefix: str) -> list[str]:
    """Host interfaces whose names carry a networker's prefix."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(prefix)]


def table_text(table: str) -> str:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True,
                          check=True).stdout
