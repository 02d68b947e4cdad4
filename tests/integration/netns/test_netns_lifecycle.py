"""Many create/destroy cycles leave nothing behind; a restarted networker keeps survivors working."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import subprocess

import pytest
from netns_sandbox import our_links, table_text, wait_for

from netns.bridged import BridgeNetworker
from netns.networker import PROTOCOL_TCP, NetOutRule, NetworkConfig, NetworkError, PortRange


def _addresses(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if prefix in line]


def _host_get(port: int) -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /id HTTP/1.0\r\n\r\n")
            return s.makefile("rb").read().decode().split("\r\n\r\n", 1)[-1]
    except OSError:
        return None


def test_300_cycles_leave_no_veth_address_rule_or_subnet(run, net, sandbox):
    links, addrs, rules, free = our_links(net.prefix), _addresses("10.251."), table_text(net.table), net.capacity()
    rule = NetOutRule(protocol=PROTOCOL_TCP, ports=[PortRange(80, 80)])
    for i in range(300):
        pid = sandbox.container()
        handle = f"cycle-{i}"
        run(net.setup(handle, pid, "10.251.128.0/25" if i % 3 == 0 else ""))
        run(net.net_in(handle, 0, 8080))
        run(net.net_out(handle, [rule]))
        run(net.teardown(handle))
        sandbox.kill(pid)
    run(net.settle())
    assert our_links(net.prefix) == links
    assert _addresses("10.251.") == addrs
    assert table_text(net.table) == rules
    assert net.capacity() == free
    assert not [h for h in net.handles() if h.startswith("cycle-")]


def test_restart_keeps_survivors_and_cleans_the_rest(run, sandbox, tmp_path):
    state, pool = str(tmp_path / "state"), ipaddress.IPv4Network("10.253.0.0/24")
    first = BridgeNetworker(state, pool, tag="t3", port_pool=(42201, 20))
    try:
        keep_pid, gone_pid = sandbox.container(), sandbox.container()
        keep = run(first.setup("keep", keep_pid, ""))
        run(first.setup("gone", gone_pid, ""))
        sandbox.http_server(keep_pid, 8080, "kept")
        port, _ = run(first.net_in("keep", 0, 8080))
        run(first.net_in("gone", 0, 9090))
        keep = first.config("keep")
        run(first.close())  # the daemon stops; containers and kernel state stay
        sandbox.kill(gone_pid)

        second = BridgeNetworker(state, pool, tag="t3", port_pool=(42201, 20))
        assert second.capacity() == 64 - 2  # nothing handed out twice after the restart
        run(second.restore({"keep": keep}))
        run(second.settle())
        assert second.handles() == ["keep"] and second.capacity() == 64 - 1
        assert wait_for(lambda: _host_get(port), "survivor's net_in") == "kept"
        fresh = run(second.setup("fresh", sandbox.container(), ""))
        assert fresh.subnet != keep.subnet
        # /30s are routed: one host veth `w<tag>b-<container ip>` each, no bridge; "gone"'s is deleted
        assert sorted(our_links("wt3")) == sorted(
            f"wt3b-{int(ipaddress.IPv4Address(c.container_ip)):08x}" for c in (keep, fresh))
        run(second.teardown("keep"))
        run(second.teardown("fresh"))
        run(second.close())
        assert our_links("wt3") == [] and os.path.exists(os.path.join(state, "netns.json"))
    finally:
        subprocess.run(["nft", "delete", "table", "ip", "trellist3"], check=False)
        for name in our_links("wt3"):
            subprocess.run(["ip", "link", "del", name], check=False)


def test_restore_adopts_configs_when_the_state_file_is_lost(run, tmp_path):
    """The engine's own records (as JSON round-trip dicts) rebuild the pools: nothing is handed out twice."""
    pool = ipaddress.IPv4Network("10.253.4.0/24")
    net = BridgeNetworker(str(tmp_path / "empty"), pool, tag="t4", port_pool=(42301, 10))
    try:
        saved = NetworkConfig(host_ip="10.253.4.1", container_ip="10.253.4.2", subnet="10.253.4.0/30",
                              mapped_ports=[{"host_port": 42301, "container_port": 8080}], extra={"net_out": []})
        run(net.restore({"survivor": saved}))
        assert net.handles() == ["survivor"] and net.capacity() == 63
        assert run(net.net_in("survivor", 0, 80))[0] == 42302  # 42301 stays taken
        with pytest.raises(NetworkError, match="already allocated"):
            run(net.setup("twin", 999999999, "10.253.4.2"))
        run(net.teardown("survivor"))
        run(net.settle())
        assert net.capacity() == 64
    finally:
        run(net.close())
        subprocess.run(["nft", "delete", "table", "ip", "trellist4"], check=False)


def test_concurrent_setups_and_teardowns(run, net, sandbox):
    pids = [sandbox.container() for _ in range(12)]
    free = net.capacity()

    async def create_all():
        return await asyncio.gather(*(net.setup(f"conc-{i}", pid, "10.251.64.0/26" if i % 2 else "")
                                      for i, pid in enumerate(pids)))

    cfgs = run(create_all())
    assert len({c.container_ip for c in cfgs}) == 12
    assert sandbox.ns(pids[1], "ping", "-c", "1", "-W", "1", cfgs[3].container_ip, check=False).returncode == 0
    assert sandbox.ns(pids[0], "ping", "-c", "1", "-W", "1", cfgs[2].container_ip, check=False).returncode == 0

    async def destroy_all():
        await asyncio.gather(*(net.teardown(f"conc-{i}") for i in range(12)))
        await net.settle()

    run(destroy_all())
    assert net.capacity() == free and not [n for n in our_links(net.prefix)]
