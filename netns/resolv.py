"""The container's /etc/resolv.conf: --dns-server flags, else the host's, without loopback nameservers."""

from __future__ import annotations

import ipaddress


def compile_resolv_conf(dns_servers: list[str], host_resolv_conf: str = "/etc/resolv.conf") -> str:
    """resolv.conf text. Host nameservers on loopback are unreachable from a container and are dropped."""
    if dns_servers:
        return "".join(f"nameserver {s}\n" for s in dns_servers)
    try:
        with open(host_resolv_conf) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return ""
    kept = []
    for line in lines:
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1 and _is_loopback(words[1]):
            continue
        kept.append(" ".join(words) + "\n")
    return "".join(kept)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False
