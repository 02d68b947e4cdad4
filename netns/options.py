"""Daemon flags for networking (named like guardian's gdn flags) and the factory the daemon calls."""

from __future__ import annotations

import argparse
import ipaddress

from netns.bridged import BridgeNetworker
from netns.networker import Networker


def _ipv4_network(text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an IPv4 CIDR: {text!r} ({e})") from None


def _ipv4_address(text: str) -> str:
    if not text:
        return ""  # argparse also runs string defaults through the type
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {text!r} ({e})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the networking flags: pool, deny networks, MTU, DNS, net_in port pool, external IP, tag."""
    g = parser.add_argument_group("networking")
    g.add_argument("--network-pool", type=_ipv4_network, default=_ipv4_network("10.254.0.0/22"),
                   help="CIDR from which each container gets a /30 (default 10.254.0.0/22)")
    g.add_argument("--deny-network", type=_ipv4_network, action="append", default=[],
                   help="CIDR containers may not reach unless a net_out rule allows it (repeatable)")
    g.add_argument("--mtu", type=int, default=0,
                   help="MTU of container interfaces (default: the default route's, at most 1500)")
    g.add_argument("--dns-server", type=_ipv4_address, action="append", default=[],
                   help="nameserver for containers' resolv.conf (repeatable; default: the host's)")
    g.add_argument("--port-pool-start", type=int, default=61001, help="first host port for net_in")
    g.add_argument("--port-pool-size", type=int, default=4534, help="number of host ports for net_in")
    g.add_argument("--external-ip", type=_ipv4_address, default="",
                   help="IP reported as ExternalIP (default: the default route interface's address)")
    g.add_argument("--network-tag", default="",
                   help="up to 3 [a-z0-9] chars naming interfaces w<tag>… and table ip trellis<tag>")


def create_networker(args: argparse.Namespace, state_dir: str) -> Networker:
    """The networker for parsed daemon flags; its allocations persist under `state_dir`."""
    return BridgeNetworker(
        state_dir, args.network_pool, deny=args.deny_network, mtu=args.mtu, dns_servers=args.dns_server,
        port_pool=(args.port_pool_start, args.port_pool_size), external_ip=args.external_ip,
        tag=args.network_tag,
    )
