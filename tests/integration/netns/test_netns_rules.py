"""--deny-network and net_out: egress is rejected until a rule allows exactly that traffic."""

from __future__ import annotations

import pytest
from netns_sandbox import table_text, wait_for

from netns.networker import PROTOCOL_ICMP, PROTOCOL_TCP, ICMPControl, IPRange, NetOutRule, NetworkError, PortRange


def test_net_out_opens_exactly_one_port(run, denying_net, sandbox):
    client, server = sandbox.container(), sandbox.container()
    run(denying_net.setup("deny-client", client, ""))
    cs = run(denying_net.setup("deny-server", server, ""))
    try:
        sandbox.http_server(server, 7001, "seven")
        sandbox.http_server(server, 7002, "other")
        for port in (7001, 7002):
            wait_for(lambda p=port: sandbox.fetch(server, "127.0.0.1", p), "server listening")
        assert sandbox.fetch(client, cs.container_ip, 7001) is None
        rule = NetOutRule(protocol=PROTOCOL_TCP, networks=[IPRange(cs.container_ip, cs.container_ip)],
                          ports=[PortRange(7001, 7001)], log=True)
        run(denying_net.net_out("deny-client", [rule]))
        assert sandbox.fetch(client, cs.container_ip, 7001) == "seven"
        assert sandbox.fetch(client, cs.container_ip, 7002) is None
        assert denying_net.config("deny-client").extra["net_out"]  # kept for restore
    finally:
        run(denying_net.teardown("deny-client"))
        run(denying_net.teardown("deny-server"))


def test_icmp_rule_with_type_allows_ping(run, denying_net, sandbox):
    a, b = sandbox.container(), sandbox.container()
    run(denying_net.setup("icmp-a", a, ""))
    cb = run(denying_net.setup("icmp-b", b, ""))
    try:
        def ping() -> bool:
            return sandbox.ns(a, "ping", "-c", "1", "-W", "1", cb.container_ip, check=False).returncode == 0

        assert not ping()
        run(denying_net.net_out("icmp-a", [NetOutRule(protocol=PROTOCOL_ICMP, icmps=ICMPControl(type=8))]))
        assert ping()
    finally:
        run(denying_net.teardown("icmp-a"))
        run(denying_net.teardown("icmp-b"))


@pytest.mark.parametrize("rule, message", [
    (NetOutRule(ports=[PortRange(80, 80)]), "Ports cannot be specified for Protocol ALL"),
    (NetOutRule(protocol=PROTOCOL_TCP, ports=[PortRange(90, 80)]), "invalid port range"),
    (NetOutRule(networks=[IPRange("10.0.0.9", "10.0.0.1")]), "end before start"),
    (NetOutRule(networks=[IPRange("nonsense", "")]), "invalid network range"),
    (NetOutRule(protocol=4), "ICMPv6"),
    (NetOutRule(protocol=9), "invalid protocol"),
])
def test_bad_rules_are_refused_and_change_nothing(run, denying_net, sandbox, rule, message):
    run(denying_net.setup("bad-rule", sandbox.container(), ""))
    try:
        ok = NetOutRule(protocol=PROTOCOL_TCP, ports=[PortRange(443, 443)])
        before = table_text(denying_net.table)
        with pytest.raises(NetworkError, match=message):
            run(denying_net.net_out("bad-rule", [ok, rule]))
        assert table_text(denying_net.table) == before
        assert denying_net.config("bad-rule").extra["net_out"] == []
    finally:
        run(denying_net.teardown("bad-rule"))


def test_bad_network_specs_leave_nothing_behind(run, net, sandbox):
    pid = sandbox.container()
    free = net.capacity()
    for spec, message in [("10.251.200.0/31", "/30 or larger"), ("banana", "invalid network spec"),
                          ("10.251.200.1/24", "gateway"), ("127.0.0.0/24", "overlaps the host")]:
        with pytest.raises(NetworkError, match=message):
            run(net.setup("bad-spec", pid, spec))
    with pytest.raises(NetworkError, match="network namespace|No such process|setup failed"):
        run(net.setup("bad-pid", 999999999, ""))
    run(net.settle())
    assert net.capacity() == free and "bad-spec" not in net.handles() and "bad-pid" not in net.handles()
