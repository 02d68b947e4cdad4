"""Blocking netlink work with pyroute2: bridges and veths on the host, eth0 inside a container.

Every call here blocks for the kernel's time (a veth delete waits ~15 ms for RCU); the networker runs
them on its own worker threads, never on the asyncio loop. One HostLinks per thread.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

CONTAINER_IFNAME = "eth0"


class HostLinks:
    """One long-lived netlink socket in the host namespace."""

    def __init__(self) -> None:
        self.ipr = IPRoute()

    def ensure_bridge(self, name: str, gateway: IPv4Address, subnet: IPv4Network, mtu: int) -> int:
        """The bridge for a shared subnet, with the gateway address, created if missing. Returns its index."""
        found = self.ipr.link_lookup(ifname=name)
        if found:
            return found[0]
        self.ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
        return self._gateway_up(name, gateway, subnet)

    def add_bridged_veth(self, name: str, bridge: int, pid: int, mtu: int) -> None:
        """A veth pair: `name` on the bridge, its peer eth0 in pid's netns."""
        self._veth_pair(name, pid, mtu, master=bridge, state="up")

    def add_routed_veth(self, name: str, gateway: IPv4Address, subnet: IPv4Network, pid: int, mtu: int) -> None:
        """A veth pair whose host end holds the gateway address itself (a /30 needs no bridge)."""
        self._veth_pair(name, pid, mtu)
        self._gateway_up(name, gateway, subnet)

    def _veth_pair(self, name: str, pid: int, mtu: int, **host: object) -> None:
        # creating the peer inside the namespace avoids the ~15 ms netns move of a host-side peer
        self.ipr.link("add", ifname=name, kind="veth", mtu=mtu, **host,
                      peer={"ifname": CONTAINER_IFNAME, "net_ns_pid": pid, "mtu": mtu})

    def _gateway_up(self, name: str, gateway: IPv4Address, subnet: IPv4Network) -> int:
        index = self.ipr.link_lookup(ifname=name)[0]
        try:
            self.ipr.addr("add", index=index, address=str(gateway), prefixlen=subnet.prefixlen)
            # net_in from a client on the host's loopback: DNATed packets keep a 127/8 source
            # (the input chain rejects anything new from containers, 127/8 included: CVE-2020-8558)
            write_sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")
            self.ipr.link("set", index=index, state="up")
        except (NetlinkError, OSError):
            self.delete(name)
            raise
        return index

    def delete(self, name: str) -> None:
        """Delete a link by name; a link that is already gone is fine."""
        try:
            self.ipr.link("del", ifname=name)
        except NetlinkError as e:
            if e.code not in (errno.ENODEV, errno.ENOENT):
                raise

    def names(self) -> list[str]:
        return [link.get("ifname") for link in self.ipr.link("dump")]

    def default_mtu(self) -> int:
        """MTU of the interface behind the default route, at most 1500 (guardian's default)."""
        for route in self.ipr.route("dump", family=2, dst_len=0, table=254):
            oif = route.get("oif")
            if oif:
                return min(1500, self.ipr.link("get", index=oif)[0].get("mtu"))
        return 1500

    def external_ip(self) -> str:
        """The first address of the default route's interface (127.0.0.1 when there is none)."""
        for route in self.ipr.route("dump", family=2, dst_len=0, table=254):
            oif = route.get("oif")
            for addr in self.ipr.addr("dump", family=2, index=oif) if oif else []:
                return addr.get("address")
        return "127.0.0.1"

    def host_networks(self, skip: Callable[[str], bool]) -> list[IPv4Network]:
        """Networks of the host's IPv4 addresses, except on interfaces `skip` accepts (our bridges)."""
        return [
            IPv4Network(f"{a.get('address')}/{a['prefixlen']}", strict=False)
            for a in self.ipr.addr("dump", family=2)
            if not skip(a.get("label") or "")
        ]

    def close(self) -> None:
        self.ipr.close()


def configure_container(netlink_fd: int, ip: IPv4Address, subnet: IPv4Network, mtu: int) -> None:
    """Address eth0 inside the container, bring it up and route everything via the gateway."""
    with IPRoute(fileno=netlink_fd) as ns:
        index = ns.link_lookup(ifname=CONTAINER_IFNAME)[0]
        ns.addr("add", index=index, address=str(ip), prefixlen=subnet.prefixlen)
        ns.link("set", index=index, state="up", mtu=mtu)
        ns.route("add", dst="0.0.0.0/0", gateway=str(subnet.network_address + 1))


def read_counter(ifname: str, name: str) -> int:
    """A /sys/class/net statistics counter of a host interface (0 if the interface is gone)."""
    try:
        with open(f"/sys/class/net/{ifname}/statistics/{name}", "rb") as f:
            return int(f.read())
    except (FileNotFoundError, ValueError):
        return 0


def enable_forwarding() -> None:
    """net.ipv4.ip_forward=1 (guardian does the same)."""
    write_sysctl("net/ipv4/ip_forward", "1")


def write_sysctl(key: str, value: str) -> None:
    """Set /proc/sys/<key> unless it already has that value."""
    path = f"/proc/sys/{key}"
    with open(path) as f:
        if f.read().strip() == value:
            return
    with open(path, "w") as f:
        f.write(value)
