"""Subnet pool: /30 blocks from the network pool, shared static subnets and fixed IPs (kawasaki semantics).

Spec forms of ContainerSpec.network: "" (a free /30 from the pool), "10.9.0.0/24" (that subnet, any free
IP; several containers may share it), "10.9.0.7/24" (that IP in that subnet), "10.9.0.6" (= "10.9.0.6/30").
In every subnet the gateway (host side) is the first address and containers get the addresses after it.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network

from netns.networker import NetworkError

BLOCK = 4  # addresses per dynamic subnet (/30)


def parse_spec(spec: str) -> tuple[IPv4Network | None, IPv4Address | None]:
    """Split a network spec into (static subnet or None, fixed IP or None)."""
    if not spec:
        return None, None
    try:
        iface = ipaddress.IPv4Interface(spec if "/" in spec else spec + "/30")
    except ValueError as e:
        raise NetworkError(f"invalid network spec {spec!r}: {e}") from None
    net = iface.network
    if net.prefixlen > 30:
        raise NetworkError(f"invalid network spec {spec!r}: subnet must be /30 or larger")
    if iface.ip == net.network_address:
        return net, None
    if iface.ip in (gateway(net), net.broadcast_address):
        raise NetworkError(f"invalid network spec {spec!r}: {iface.ip} is the gateway or broadcast of {net}")
    return net, iface.ip


def gateway(subnet: IPv4Network) -> IPv4Address:
    """The host-side address of a subnet."""
    return subnet.network_address + 1


class SubnetPool:
    """In-memory allocation table; the networker persists it. Not thread-safe: call from one thread."""

    def __init__(self, pool: IPv4Network):
        if pool.prefixlen > 30:
            raise NetworkError(f"network pool {pool} is smaller than a /30")
        self.pool = pool
        self._blocks = pool.num_addresses // BLOCK
        self._used_blocks: set[int] = set()
        self._subnets: dict[IPv4Network, set[IPv4Address]] = {}

    def free(self) -> int:
        """Number of /30 blocks of the pool not covered by any subnet in use."""
        return self._blocks - len(self._used_blocks)

    def subnets(self) -> dict[IPv4Network, set[IPv4Address]]:
        return self._subnets

    def allocate(self, spec: str) -> tuple[IPv4Network, IPv4Address]:
        """Pick (subnet, container IP) for a spec; raises NetworkError and changes nothing when impossible."""
        subnet, ip = parse_spec(spec)
        if subnet is None:
            subnet = self._free_block()
        elif subnet not in self._subnets:
            self._check_no_overlap(subnet)
        taken = self._subnets.get(subnet, set())
        if ip is None:
            ip = next((a for a in subnet.hosts() if a != gateway(subnet) and a not in taken), None)
            if ip is None:
                raise NetworkError(f"insufficient IPs remaining in subnet {subnet}")
        elif ip in taken:
            raise NetworkError(f"the requested IP is already allocated: {ip}")
        self.reserve(subnet, ip)
        return subnet, ip

    def reserve(self, subnet: IPv4Network, ip: IPv4Address) -> None:
        """Mark exactly this subnet and IP as used (also used to rebuild the table after a restart)."""
        if subnet not in self._subnets:
            self._check_no_overlap(subnet)
            self._subnets[subnet] = set()
            self._used_blocks.update(self._blocks_of(subnet))
        if ip in self._subnets[subnet]:
            raise NetworkError(f"the requested IP is already allocated: {ip}")
        self._subnets[subnet].add(ip)

    def release_ip(self, subnet: IPv4Network, ip: IPv4Address) -> bool:
        """Free one IP; True when its subnet is now empty (then call `release_subnet` once it is gone)."""
        ips = self._subnets.get(subnet)
        if ips is None:
            return False
        ips.discard(ip)
        return not ips

    def release_subnet(self, subnet: IPv4Network) -> None:
        """Free an empty subnet for reuse."""
        if self._subnets.get(subnet):
            return
        self._subnets.pop(subnet, None)
        self._used_blocks.difference_update(self._blocks_of(subnet))

    def _free_block(self) -> IPv4Network:
        for i in range(self._blocks):
            if i not in self._used_blocks:
                return IPv4Network((int(self.pool.network_address) + i * BLOCK, 30))
        raise NetworkError("insufficient subnets remaining in the pool")

    def _check_no_overlap(self, subnet: IPv4Network) -> None:
        for other in self._subnets:
            if other.overlaps(subnet):
                raise NetworkError(f"the requested subnet {subnet} overlaps an existing subnet {other}")

    def _blocks_of(self, subnet: IPv4Network) -> range:
        if not subnet.overlaps(self.pool):
            return range(0)
        lo = max(int(subnet.network_address), int(self.pool.network_address))
        hi = min(int(subnet.broadcast_address), int(self.pool.broadcast_address))
        base = int(self.pool.network_address)
        return range((lo - base) // BLOCK, (hi - base) // BLOCK + 1)
