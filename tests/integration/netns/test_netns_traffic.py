"""Real traffic between network namespaces on this machine through the networker."""

from __future__ import annotations

import socket
import subprocess

import pytest
from netns_sandbox import wait_for

from netns.networker import NetworkConfig, NetworkError


def _get(host: str, port: int) -> str | None:
    """HTTP GET /id from this (host) namespace; None on failure."""
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"GET /id HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return None
    return data.decode().split("\r\n\r\n", 1)[-1]


def test_containers_in_different_subnets_talk_through_the_host(run, net, sandbox):
    a, b = sandbox.container(), sandbox.container()
    ca = run(net.setup("traffic-a", a, ""))
    cb = run(net.setup("traffic-b", b, ""))
    try:
        assert ca.subnet != cb.subnet and ca.subnet.endswith("/30") and cb.subnet.endswith("/30")
        assert ca.host_ip.endswith(".1") or ca.host_ip != ca.container_ip
        sandbox.http_server(b, 8080, "from-b")
        assert wait_for(lambda: sandbox.fetch(a, cb.container_ip, 8080), "a reaches b") == "from-b"
        route = sandbox.ns(a, "ip", "route").stdout
        assert f"default via {ca.host_ip}" in route
        assert f"mtu {net.mtu}" in sandbox.ns(a, "ip", "link", "show", "eth0").stdout
    finally:
        run(net.teardown("traffic-a"))
        run(net.teardown("traffic-b"))


def test_shared_subnet_survives_a_neighbour_leaving(run, net, sandbox):
    pids = [sandbox.container() for _ in range(3)]
    cfgs = [run(net.setup(f"shared-{i}", pid, "10.251.100.0/24")) for i, pid in enumerate(pids)]
    try:
        assert {c.subnet for c in cfgs} == {"10.251.100.0/24"}
        assert {c.host_ip for c in cfgs} == {"10.251.100.1"}
        assert len({c.container_ip for c in cfgs}) == 3
        sandbox.http_server(pids[2], 8080, "from-2")
        assert wait_for(lambda: sandbox.fetch(pids[0], cfgs[2].container_ip, 8080), "same bridge") == "from-2"
        run(net.teardown("shared-1"))
        run(net.settle())
        assert sandbox.fetch(pids[0], cfgs[2].container_ip, 8080) == "from-2"
        # a fixed IP in the shared subnet, and the freed IP can be handed out again
        again = run(net.setup("shared-1", sandbox.container(), cfgs[1].container_ip + "/24"))
        assert again.container_ip == cfgs[1].container_ip
    finally:
        for i in range(3):
            run(net.teardown(f"shared-{i}"))


def test_net_in_reaches_a_server_from_host_and_from_other_containers(run, net, sandbox):
    server, client = sandbox.container(), sandbox.container()
    cs = run(net.setup("netin-server", server, ""))
    cc = run(net.setup("netin-client", client, ""))
    try:
        sandbox.http_server(server, 8080, "served")
        host_port, container_port = run(net.net_in("netin-server", 0, 8080))
        assert container_port == 8080 and 42001 <= host_port < 42051
        explicit = run(net.net_in("netin-server", 42049, 0))
        assert explicit == (42049, 42049)
        with pytest.raises(NetworkError, match="already acquired"):
            run(net.net_in("netin-client", 42049, 80))
        assert wait_for(lambda: _get("127.0.0.1", host_port), "loopback client") == "served"
        assert _get(net.external_ip, host_port) == "served"
        assert sandbox.fetch(client, cc.host_ip, host_port) == "served"
        assert sandbox.fetch(client, net.external_ip, host_port) == "served"
        cfg: NetworkConfig = net.config("netin-server")
        assert [(p.host_port, p.container_port) for p in cfg.mapped_ports] == [(host_port, 8080), (42049, 42049)]
        assert cfg.container_ip == cs.container_ip and cfg.external_ip == net.external_ip
        stat = run(net.stat("netin-server"))
        assert stat.rx_bytes > 0 and stat.tx_bytes > 0
    finally:
        run(net.teardown("netin-server"))
        run(net.teardown("netin-client"))
    assert _get("127.0.0.1", host_port) is None  # mapping gone with the container


def test_egress_is_masqueraded_to_the_host_address(run, net, sandbox):
    """An "outside" namespace made by the test stands in for the world: it sees the host, not the container."""
    outside = sandbox.container()
    subprocess.run(["ip", "link", "add", "nst1out", "type", "veth", "peer", "name", "eth0", "netns", str(outside)],
                   check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.251.250.1/30", "dev", "nst1out"], check=True)
        subprocess.run(["ip", "link", "set", "nst1out", "up"], check=True)
        sandbox.ns(outside, "ip", "addr", "add", "10.251.250.2/30", "dev", "eth0")
        sandbox.ns(outside, "ip", "link", "set", "eth0", "up")
        sandbox.cgi_server(outside, 9000)
        pid = sandbox.container()
        cfg = run(net.setup("egress", pid, ""))
        try:
            seen = wait_for(lambda: sandbox.fetch(pid, "10.251.250.2", 9000, "/cgi-bin/peer"), "outside reached")
            assert seen == "10.251.250.1" and seen != cfg.container_ip
        finally:
            run(net.teardown("egress"))
    finally:
        subprocess.run(["ip", "link", "del", "nst1out"], check=True)
