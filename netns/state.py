"""What the networker handed out, persisted under the daemon's state dir so nothing is given twice."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from netns.networker import NetIn, NetworkConfig


@dataclass
class Attachment:
    """One container's network: its addresses, compiled net_out rules and net_in mappings."""

    handle: str
    subnet: IPv4Network
    ip: IPv4Address
    rules: list[str] = field(default_factory=list)
    ports: list[tuple[int, int]] = field(default_factory=list)  # (host port, container port)

    def to_json(self) -> dict:
        return {"subnet": str(self.subnet), "ip": str(self.ip), "rules": self.rules,
                "ports": [list(p) for p in self.ports]}

    @classmethod
    def from_json(cls, handle: str, data: dict) -> Attachment:
        return cls(handle, IPv4Network(data["subnet"]), IPv4Address(data["ip"]), list(data.get("rules", [])),
                   [(int(h), int(c)) for h, c in data.get("ports", [])])

    @classmethod
    def from_config(cls, handle: str, cfg: NetworkConfig) -> Attachment:
        ports = [(p["host_port"], p["container_port"]) if isinstance(p, dict) else (p.host_port, p.container_port)
                 for p in cfg.mapped_ports]  # NetIn, or its dict when the engine rebuilt cfg from JSON
        return cls(handle, IPv4Network(cfg.subnet), IPv4Address(cfg.container_ip),
                   list(cfg.extra.get("net_out", [])), ports)

    def to_config(self, external_ip: str) -> NetworkConfig:
        return NetworkConfig(
            host_ip=str(self.subnet.network_address + 1), container_ip=str(self.ip), subnet=str(self.subnet),
            external_ip=external_ip, mapped_ports=[NetIn(h, c) for h, c in self.ports],
            extra={"net_out": list(self.rules)},
        )


class StateFile:
    """A JSON file rewritten atomically (temp file + rename) on every change."""

    def __init__(self, path: str):
        self.path = path

    def load(self) -> dict[str, Attachment]:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        return {h: Attachment.from_json(h, d) for h, d in data.get("containers", {}).items()}

    def save(self, attachments: dict[str, Attachment]) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump({"containers": {h: a.to_json() for h, a in attachments.items()}}, f)
        os.replace(tmp, self.path)
