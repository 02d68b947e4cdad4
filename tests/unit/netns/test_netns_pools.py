"""Subnet pool, network specs and the port pool (pure logic)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from netns.networker import NetworkError
from netns.ports import PortPool
from netns.subnets import SubnetPool, parse_spec

POOL = IPv4Network("10.254.0.0/22")


@pytest.mark.parametrize("spec, subnet, ip", [
    ("", None, None),
    ("10.9.0.0/24", "10.9.0.0/24", None),
    ("10.9.0.7/24", "10.9.0.0/24", "10.9.0.7"),
    ("10.9.0.6", "10.9.0.4/30", "10.9.0.6"),
    ("10.9.0.4", "10.9.0.4/30", None),
])
def test_parse_spec(spec, subnet, ip):
    got_subnet, got_ip = parse_spec(spec)
    assert (str(got_subnet) if got_subnet else None, str(got_ip) if got_ip else None) == (subnet, ip)


@pytest.mark.parametrize("spec", ["x", "10.9.0.1/24", "10.9.0.255/24", "10.9.0.0/31", "10.9.0.5", "::1/64"])
def test_parse_spec_rejects(spec):
    with pytest.raises(NetworkError):
        parse_spec(spec)


def test_dynamic_subnets_are_consecutive_30s_with_host_1_and_container_2():
    pool = SubnetPool(POOL)
    assert pool.free() == 256
    assert pool.allocate("") == (IPv4Network("10.254.0.0/30"), IPv4Address("10.254.0.2"))
    assert pool.allocate("") == (IPv4Network("10.254.0.4/30"), IPv4Address("10.254.0.6"))
    assert pool.free() == 254


def test_exhaustion_and_release():
    pool = SubnetPool(IPv4Network("10.0.0.0/29"))
    a = pool.allocate("")
    pool.allocate("")
    with pytest.raises(NetworkError, match="insufficient subnets"):
        pool.allocate("")
    assert pool.release_ip(*a) is True
    assert pool.free() == 0  # an empty subnet stays reserved until its bridge is gone
    pool.release_subnet(a[0])
    assert pool.allocate("") == a


def test_shared_subnet_and_fixed_ips():
    pool = SubnetPool(POOL)
    assert pool.allocate("10.9.0.0/29")[1] == IPv4Address("10.9.0.2")
    assert pool.allocate("10.9.0.5/29")[1] == IPv4Address("10.9.0.5")
    assert pool.allocate("10.9.0.0/29")[1] == IPv4Address("10.9.0.3")
    with pytest.raises(NetworkError, match="already allocated"):
        pool.allocate("10.9.0.5/29")
    with pytest.raises(NetworkError, match="overlaps"):
        pool.allocate("10.9.0.0/24")
    assert pool.release_ip(IPv4Network("10.9.0.0/29"), IPv4Address("10.9.0.2")) is False


def test_static_subnet_inside_the_pool_is_never_given_dynamically():
    pool = SubnetPool(POOL)
    pool.allocate("10.254.0.0/28")
    assert pool.free() == 252
    assert pool.allocate("")[0] == IPv4Network("10.254.0.16/30")


def test_port_pool_round_robin_reserve_release():
    ports = PortPool(61001, 3)
    assert [ports.acquire(), ports.acquire()] == [61001, 61002]
    ports.release(61001)
    assert ports.acquire() == 61003  # a freed port is not reused at once
    assert ports.acquire() == 61001
    with pytest.raises(NetworkError, match="insufficient ports"):
        ports.acquire()
    ports.reserve(8080)
    with pytest.raises(NetworkError, match="already acquired"):
        ports.reserve(8080)
    with pytest.raises(NetworkError):
        ports.reserve(70000)
