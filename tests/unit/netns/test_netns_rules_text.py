"""NetOutRule -> nft text, log prefixes, resolv.conf (pure logic)."""

from __future__ import annotations

from netns.networker import (
    PROTOCOL_ICMP,
    PROTOCOL_TCP,
    PROTOCOL_UDP,
    ICMPControl,
    IPRange,
    NetOutRule,
    PortRange,
)
from netns.resolv import compile_resolv_conf
from netns.rules import compile_rule, log_prefix


def test_all_everything():
    assert compile_rule(NetOutRule(), "h ") == "accept"


def test_tcp_ranges_ports_and_log():
    rule = NetOutRule(protocol=PROTOCOL_TCP, networks=[IPRange("10.0.0.1", "10.0.0.9"), IPRange("10.1.0.1", "")],
                      ports=[PortRange(80, 90), PortRange(443, 0)], log=True)
    assert compile_rule(rule, "h ") == (
        'ip daddr { 10.0.0.1-10.0.0.9, 10.1.0.1 } tcp dport { 80-90, 443 } log prefix "h " accept')


def test_udp_without_ports_and_icmp_type_code():
    assert compile_rule(NetOutRule(protocol=PROTOCOL_UDP), "") == "meta l4proto udp accept"
    rule = NetOutRule(protocol=PROTOCOL_ICMP, icmps=ICMPControl(type=3, code=0))
    assert compile_rule(rule, "") == "meta l4proto icmp icmp type 3 icmp code 0 accept"


def test_log_prefix_is_28_safe_chars():
    assert log_prefix('a"b; drop' + "x" * 40) == "a_b__drop" + "x" * 19 + " "


def test_resolv_conf_flags_win_and_loopback_is_dropped(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("# c\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.internal\n")
    assert compile_resolv_conf([], str(host)) == "nameserver 10.0.0.2\nsearch example.internal\n"
    assert compile_resolv_conf(["10.1.1.1"], str(host)) == "nameserver 10.1.1.1\n"
