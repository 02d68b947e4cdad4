"""nftables text for the project's table: base chains at start-up, one chain + map entries per container.

Layout of `table ip <name>` (never touches other tables):
  map egress  ipv4_addr : verdict              container IP -> jump to its chain (forward hook)
  map netin   inet_service : ipv4_addr . port  host port -> container IP . port (DNAT, prerouting + output)
  set deny    --deny-network CIDRs             rejected by every container chain unless a net_out rule allows
"""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address, IPv4Network

from netns.networker import (
    PROTOCOL_ALL,
    PROTOCOL_ICMP,
    PROTOCOL_ICMPV6,
    PROTOCOL_TCP,
    PROTOCOL_UDP,
    IPRange,
    NetOutRule,
    NetworkError,
    PortRange,
)

_L4 = {PROTOCOL_TCP: "tcp", PROTOCOL_UDP: "udp"}


def base_batch(table: str, bridges: str, deny: list[IPv4Network]) -> list[str]:
    """Idempotent commands creating the table, maps and base chains (re-run at every start)."""
    t = f"ip {table}"
    cmds = [
        f"add table {t}",
        f"add map {t} egress {{ type ipv4_addr : verdict; }}",
        f"add map {t} netin {{ type inet_service : ipv4_addr . inet_service; }}",
        f"add set {t} deny {{ type ipv4_addr; flags interval; }}",
        f"add chain {t} forward {{ type filter hook forward priority filter; policy accept; }}",
        f"add chain {t} input {{ type filter hook input priority filter; policy accept; }}",
        f"add chain {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}",
        f"add chain {t} output {{ type nat hook output priority -100; policy accept; }}",
        f"add chain {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}",
        f"flush set {t} deny",
    ]
    for chain in ("forward", "input", "prerouting", "output", "postrouting"):
        cmds.append(f"flush chain {t} {chain}")
    cmds += [
        # egress of containers: their own chain; unknown (spoofed) sources are dropped
        f'add rule {t} forward iifname "{bridges}" ip saddr vmap @egress',
        f'add rule {t} forward iifname "{bridges}" drop',
        # containers may not reach the host itself (guardian's allow_host_access=false)
        f'add rule {t} input iifname "{bridges}" ct state established,related accept',
        f'add rule {t} input iifname "{bridges}" reject with icmp type host-prohibited',
        # net_in: any local address of this host (its IP, loopback, gateways) -> container
        f"add rule {t} prerouting fib daddr type local dnat ip to tcp dport map @netin",
        f"add rule {t} output fib daddr type local dnat ip to tcp dport map @netin",
        f'add rule {t} postrouting iifname "{bridges}" oifname != "{bridges}" masquerade',
        f'add rule {t} postrouting oifname "{bridges}" ip saddr 127.0.0.0/8 masquerade',
    ]
    if deny:
        nets = ", ".join(str(n) for n in ipaddress.collapse_addresses(deny))
        cmds.append(f"add element {t} deny {{ {nets} }}")
    return cmds


def container_batch(
    table: str, chain: str, ip: IPv4Address, subnet: IPv4Network, rules: list[str]
) -> list[str]:
    """(Re)build one container's egress chain with its net_out rules and hook it into the egress map."""
    t, c = f"ip {table}", f"ip {table} {chain}"
    return [
        f"add chain {c}",
        f"flush chain {c}",
        f"add rule {c} ct state established,related accept",
        f"add rule {c} ct status dnat accept",  # other containers' net_in ports
        f"add rule {c} ip daddr {subnet} accept",
        *(f"add rule {c} {r}" for r in rules),
        f"add rule {c} ip daddr @deny reject",
        f"add rule {c} accept",
        f"add element {t} egress {{ {ip} : jump {chain} }}",
    ]


def remove_container_batch(table: str, chain: str, ip: IPv4Address, host_ports: list[int]) -> list[str]:
    """Exactly the objects `container_batch` and `netin_element` made for one container."""
    t = f"ip {table}"
    cmds = [f"delete element {t} egress {{ {ip} }}"]
    if host_ports:
        cmds.append(f"delete element {t} netin {{ {', '.join(map(str, host_ports))} }}")
    return cmds + [f"flush chain {t} {chain}", f"delete chain {t} {chain}"]


def netin_element(table: str, host_port: int, ip: IPv4Address, container_port: int) -> str:
    return f"add element ip {table} netin {{ {host_port} : {ip} . {container_port} }}"


def compile_rule(rule: NetOutRule, log_prefix: str) -> str:
    """One garden NetOutRule as an nft rule body ending in `accept`; NetworkError on bad input."""
    parts: list[str] = []
    if rule.networks:
        parts.append("ip daddr { " + ", ".join(_ip_range(r) for r in rule.networks) + " }")
    if rule.protocol == PROTOCOL_ALL:
        if rule.ports:
            raise NetworkError("Ports cannot be specified for Protocol ALL")
        if rule.icmps is not None:
            raise NetworkError("ICMP control cannot be specified for Protocol ALL")
    elif rule.protocol in _L4:
        name = _L4[rule.protocol]
        if rule.icmps is not None:
            raise NetworkError(f"ICMP control cannot be specified for Protocol {name.upper()}")
        if rule.ports:
            parts.append(f"{name} dport {{ " + ", ".join(_port_range(p) for p in rule.ports) + " }")
        else:
            parts.append(f"meta l4proto {name}")
    elif rule.protocol == PROTOCOL_ICMP:
        if rule.ports:
            raise NetworkError("Ports cannot be specified for Protocol ICMP")
        parts.append("meta l4proto icmp")
        if rule.icmps is not None:
            parts.append(f"icmp type {_uint8(rule.icmps.type, 'ICMP type')}")
            if rule.icmps.code is not None:
                parts.append(f"icmp code {_uint8(rule.icmps.code, 'ICMP code')}")
    elif rule.protocol == PROTOCOL_ICMPV6:
        raise NetworkError("Protocol ICMPv6 is not supported: containers have IPv4 only")
    else:
        raise NetworkError(f"invalid protocol: {rule.protocol}")
    if rule.log:
        parts.append(f'log prefix "{log_prefix}"')
    parts.append("accept")
    return " ".join(parts)


def log_prefix(handle: str) -> str:
    """Guardian logs with the first 28 characters of the handle; keep only characters safe in nft text."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", handle[:28]) + " "


def _ip_range(r: IPRange) -> str:
    try:
        start = ipaddress.IPv4Address(r.start)
        end = ipaddress.IPv4Address(r.end) if r.end else start
    except ValueError as e:
        raise NetworkError(f"invalid network range {r.start!r}-{r.end!r}: {e}") from None
    if end < start:
        raise NetworkError(f"invalid network range {start}-{end}: end before start")
    return str(start) if start == end else f"{start}-{end}"


def _port_range(p: PortRange) -> str:
    end = p.end or p.start
    if not (0 < p.start <= end <= 65535):
        raise NetworkError(f"invalid port range {p.start}-{p.end}")
    return str(p.start) if p.start == end else f"{p.start}-{end}"


def _uint8(value: int, what: str) -> int:
    if not 0 <= value <= 255:
        raise NetworkError(f"invalid {what}: {value}")
    return value
