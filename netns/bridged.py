"""The Networker: a veth per container (routed for a /30, on a bridge per shared subnet), nftables rules
in the project's own table.

Threads: request-path kernel work runs on one worker thread (its own netlink socket and libnftables
context), slow veth/bridge deletes on a second "reaper" thread, so neither blocks the asyncio loop.
Allocation tables are only touched on the loop thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

from pyroute2.netlink.exceptions import NetlinkError

from netns import links
from netns import rules as nftrules
from netns.networker import NetOutRule, NetworkConfig, Networker, NetworkError, NetworkStat
from netns.nft import Nft
from netns.nsopen import NsSocketBroker
from netns.ports import PortPool
from netns.resolv import compile_resolv_conf
from netns.state import Attachment, StateFile
from netns.subnets import SubnetPool, gateway, parse_spec

log = logging.getLogger(__name__)
T = TypeVar("T")


class BridgeNetworker(Networker):
    """Guardian-kawasaki-style container networking for one daemon (nftables layout: netns/rules.py)."""

    def __init__(
        self, state_dir: str, pool: IPv4Network, *, deny: list[IPv4Network] | None = None, mtu: int = 0,
        dns_servers: list[str] | None = None, port_pool: tuple[int, int] = (61001, 4534),
        external_ip: str = "", tag: str = "",
    ):
        if not re.fullmatch(r"[a-z0-9]{0,3}", tag):
            raise NetworkError(f"invalid network tag {tag!r}: up to 3 lowercase letters or digits")
        self.prefix, self.table = f"w{tag}", f"trellis{tag}"
        self._ours = re.compile(rf"{self.prefix}(?:b-[0-9a-f]{{8}}|[0-9a-f]{{8}}-0)")
        self._deny = list(deny or [])
        self._subnets = SubnetPool(pool)
        self._ports = PortPool(*port_pool)
        self._resolv = compile_resolv_conf(list(dns_servers or []))
        os.makedirs(state_dir, exist_ok=True)
        self._state = StateFile(os.path.join(state_dir, "netns.json"))
        self._attached: dict[str, Attachment] = {}
        for att in self._state.load().values():
            self._reserve(att)
        self._reaping: set[asyncio.Task] = set()
        self._pending: dict[IPv4Network, set[asyncio.Task]] = {}  # releases by subnet
        self._broker = NsSocketBroker()
        self._nft = Nft()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="netns")
        self._reaper = ThreadPoolExecutor(1, thread_name_prefix="netns-reap")
        self._links: links.HostLinks = self._worker.submit(links.HostLinks).result()
        self._reap_links: links.HostLinks = self._reaper.submit(links.HostLinks).result()
        self.mtu = mtu or self._worker.submit(self._links.default_mtu).result()
        self.external_ip = external_ip or self._worker.submit(self._links.external_ip).result()
        self._host_networks = self._worker.submit(self._links.host_networks, self._is_ours).result()
        self._worker.submit(self._start_kernel_side).result()

    # --- Networker interface ---------------------------------------------------------------------

    async def setup(self, handle: str, init_pid: int, network: str) -> NetworkConfig:
        if handle in self._attached:
            raise NetworkError(f"network already set up for container {handle}")
        static, _ = parse_spec(network)
        if static is not None:
            self._check_host_overlap(static)
            while static in self._pending:  # a release in that subnet must finish (names, bridge)
                await asyncio.gather(*self._pending[static], return_exceptions=True)
        subnet, ip = self._subnets.allocate(network)
        att = Attachment(handle, subnet, ip)
        try:
            await self._run(self._attach, att, init_pid)
        except BaseException:
            self._spawn(self._release(att), att.subnet)
            raise
        self._attached[handle] = att
        self._save()
        return att.to_config(self.external_ip)

    async def teardown(self, handle: str) -> None:
        att = self._attached.pop(handle, None)
        if att is None:
            return
        for host_port, _ in att.ports:
            self._ports.release(host_port)
        self._save()
        await self._run(self._detach, att)
        self._spawn(self._release(att), att.subnet)

    async def net_in(self, handle: str, host_port: int, container_port: int) -> tuple[int, int]:
        att = self._get(handle)
        if not 0 <= container_port <= 65535:
            raise NetworkError(f"invalid container port {container_port}")
        if host_port:
            self._ports.reserve(host_port)
        else:
            host_port = self._ports.acquire()
        container_port = container_port or host_port
        try:
            element = nftrules.netin_element(self.table, host_port, att.ip, container_port)
            await self._run(self._nft.run, [element])
        except BaseException:
            self._ports.release(host_port)
            raise
        att.ports.append((host_port, container_port))
        self._save()
        return host_port, container_port

    async def net_out(self, handle: str, rules: list[NetOutRule]) -> None:
        att = self._get(handle)
        compiled = [nftrules.compile_rule(r, nftrules.log_prefix(handle)) for r in rules]
        await self._run(self._extend_rules, att, compiled)
        self._save()

    def config(self, handle: str) -> NetworkConfig:
        return self._get(handle).to_config(self.external_ip)

    async def restore(self, configs: dict[str, NetworkConfig]) -> None:
        """Adopt surviving containers, tear down the rest, re-apply every survivor's rules, drop strays."""
        for handle, cfg in configs.items():
            if handle not in self._attached and cfg.container_ip:
                try:
                    self._reserve(Attachment.from_config(handle, cfg))
                except (NetworkError, ValueError, KeyError, TypeError) as e:
                    log.warning("cannot restore the network of %s: %s", handle, e)
        for handle in [h for h in self._attached if h not in configs]:
            await self.teardown(handle)
        self._save()
        await self._run(self._reapply_all)
        keep = {self._veth(a) for a in self._attached.values()}
        keep |= {self._bridge(s) for s in self._subnets.subnets()}
        strays = [n for n in await self._run(self._links.names) if self._is_ours(n) and n not in keep]
        for name in strays:
            self._spawn(self._in_reaper(self._reap_links.delete, name))

    def handles(self) -> list[str]:
        """Containers that currently have a network."""
        return list(self._attached)

    def capacity(self) -> int:
        return self._subnets.free()

    async def stat(self, handle: str) -> NetworkStat | None:
        veth = self._veth(self._get(handle))  # host end: its tx is the container's rx
        return NetworkStat(rx_bytes=links.read_counter(veth, "tx_bytes"),
                           tx_bytes=links.read_counter(veth, "rx_bytes"))

    def resolv_conf(self) -> str:
        return self._resolv

    async def settle(self) -> None:
        """Wait until background deletes (veths, bridges, freed subnets) are done."""
        while self._reaping:
            await asyncio.gather(*list(self._reaping), return_exceptions=True)

    async def close(self) -> None:
        """Finish background work and release threads, sockets and the helper process.

        With no container left, the project's table goes too; otherwise it stays for the next daemon.
        """
        await self.settle()
        if not self._attached:
            self._worker.submit(self._nft.run, [f"delete table ip {self.table}"]).result()
        self._worker.submit(self._links.close).result()
        self._reaper.submit(self._reap_links.close).result()
        self._worker.shutdown()
        self._reaper.shutdown()
        self._broker.close()

    # --- worker-thread jobs ------------------------------------------------------------------------

    def _start_kernel_side(self) -> None:
        links.enable_forwarding()
        self._nft.run(nftrules.base_batch(self.table, f"{self.prefix}b-*", self._deny))

    def _attach(self, att: Attachment, pid: int) -> None:
        veth, gw = self._veth(att), gateway(att.subnet)
        if _routed(att.subnet):
            self._links.add_routed_veth(veth, gw, att.subnet, pid, self.mtu)
        else:
            bridge = self._links.ensure_bridge(self._bridge(att.subnet), gw, att.subnet, self.mtu)
            self._links.add_bridged_veth(veth, bridge, pid, self.mtu)
        try:
            fd = self._broker.netlink_fd(pid)
            links.configure_container(fd, att.ip, att.subnet, self.mtu)
            batch = nftrules.container_batch(self.table, self._chain(att), att.ip, att.subnet, att.rules)
            self._nft.run(batch)
        except BaseException:
            self._links.delete(veth)
            raise

    def _detach(self, att: Attachment) -> None:
        host_ports = [h for h, _ in att.ports]
        batch = nftrules.remove_container_batch(self.table, self._chain(att), att.ip, host_ports)
        try:
            self._nft.run(batch)
        except NetworkError:  # partly gone already: remove what is left, one object at a time
            for cmd in batch:
                try:
                    self._nft.run([cmd])
                except NetworkError:
                    pass

    def _extend_rules(self, att: Attachment, compiled: list[str]) -> None:
        new = att.rules + compiled
        self._nft.run(nftrules.container_batch(self.table, self._chain(att), att.ip, att.subnet, new))
        att.rules = new

    def _reapply_all(self) -> None:
        t = f"ip {self.table}"
        live = {self._chain(a) for a in self._attached.values()}
        batch = nftrules.base_batch(self.table, f"{self.prefix}b-*", self._deny)
        batch += [f"flush map {t} egress", f"flush map {t} netin"]
        for chain in self._nft.chains(self.table):
            if chain.startswith("c-") and chain not in live:
                batch += [f"flush chain {t} {chain}", f"delete chain {t} {chain}"]
        for att in self._attached.values():
            batch += nftrules.container_batch(self.table, self._chain(att), att.ip, att.subnet, att.rules)
            batch += [nftrules.netin_element(self.table, h, att.ip, c) for h, c in att.ports]
        self._nft.run(batch)

    # --- background release -----------------------------------------------------------------------

    async def _release(self, att: Attachment) -> None:
        """Delete the host veth, then free the IP; the last one out of a subnet removes its bridge."""
        await self._in_reaper(self._reap_links.delete, self._veth(att))
        if not self._subnets.release_ip(att.subnet, att.ip):
            return
        if not _routed(att.subnet):
            await self._in_reaper(self._reap_links.delete, self._bridge(att.subnet))
        self._subnets.release_subnet(att.subnet)

    async def _in_reaper(self, fn: Callable[..., T], *args: object) -> T:
        return await self._run(fn, *args, executor=self._reaper)

    def _spawn(self, coro: Coroutine[Any, Any, None], subnet: IPv4Network | None = None) -> None:
        task = asyncio.ensure_future(coro)
        self._reaping.add(task)
        if subnet is not None:
            self._pending.setdefault(subnet, set()).add(task)
        task.add_done_callback(functools.partial(self._reaped, subnet))

    def _reaped(self, subnet: IPv4Network | None, task: asyncio.Task) -> None:
        self._reaping.discard(task)
        if subnet is not None:
            self._pending[subnet].discard(task)
            if not self._pending[subnet]:
                del self._pending[subnet]
        if not task.cancelled() and task.exception() is not None:
            log.error("network cleanup failed: %s", task.exception())

    # --- helpers ----------------------------------------------------------------------------------

    async def _run(
        self, fn: Callable[..., T], *args: object, executor: ThreadPoolExecutor | None = None
    ) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(executor or self._worker, fn, *args)
        except (NetlinkError, OSError) as e:
            raise NetworkError(f"network setup failed: {e}") from e

    def _reserve(self, att: Attachment) -> None:
        self._subnets.reserve(att.subnet, att.ip)
        for host_port, _ in att.ports:
            self._ports.reserve(host_port)
        self._attached[att.handle] = att

    def _get(self, handle: str) -> Attachment:
        att = self._attached.get(handle)
        if att is None:
            raise NetworkError(f"no network for container {handle}")
        return att

    def _check_host_overlap(self, subnet: IPv4Network) -> None:
        for net in self._host_networks:
            if net.overlaps(subnet):
                raise NetworkError(f"the requested subnet {subnet} overlaps the host network {net}")

    def _save(self) -> None:
        self._state.save(self._attached)

    def _is_ours(self, ifname: str) -> bool:
        return self._ours.fullmatch(ifname) is not None

    def _veth(self, att: Attachment) -> str:
        """Host end: `w<tag>b-<ip>` when routed (matched by the bridges' wildcard), else `w<tag><ip>-0`."""
        if _routed(att.subnet):
            return f"{self.prefix}b-{_hex(att.ip)}"
        return f"{self.prefix}{_hex(att.ip)}-0"

    def _bridge(self, subnet: IPv4Network) -> str:
        return f"{self.prefix}b-{_hex(subnet.network_address)}"

    @staticmethod
    def _chain(att: Attachment) -> str:
        return f"c-{_hex(att.ip)}"


def _routed(subnet: IPv4Network) -> bool:
    """A /30 holds one container: its veth is routed directly, without a bridge."""
    return subnet.prefixlen == 30


def _hex(address: IPv4Address) -> str:
    return f"{int(address):08x}"
