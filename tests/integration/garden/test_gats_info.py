"""GATS `container_info_test.go`, `capacity_test.go` and `metrics_test.go` mirrored in Python (real daemon)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from garden import errors, models
from tests.integration.garden.gats_support import sh


def eventually(fn: Callable[[], object], timeout: float = 10.0, interval: float = 0.1) -> object:
    """Gomega's Eventually: the first truthy value of fn() within `timeout` (else its last value)."""
    deadline = time.monotonic() + timeout
    while not (value := fn()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


# ----------------------------------------------------------------------------------- container_info_test.go

PROPS = {"foo": "bar1", "a": "b"}


def test_info_includes_properties(client, make):
    """Container information for a single container info for one container includes the properties."""
    handle = make(user=False, properties=dict(PROPS))
    info = client.info(handle)
    assert info.properties["foo"] == "bar1"
    assert info.properties["a"] == "b"


def test_metrics_without_info(client, make):
    """Container information for a single container getting container metrics without getting info can list
    metrics."""
    handle = make(user=False, properties=dict(PROPS))
    assert client.metrics(handle) != models.Metrics()


def test_properties_without_info(client, make):
    """Container information for a single container getting container properties without getting info can list
    properties."""
    handle = make(user=False, properties=dict(PROPS))
    client.set_property(handle, "bar", "baz")
    props = client.properties(handle)
    assert props["foo"] == "bar1"
    assert props["bar"] == "baz"


def test_property_crud(client, make):
    """Container information for a single container updating container properties can CRUD."""
    handle = make(user=False, properties=dict(PROPS))
    assert client.property(handle, "foo") == "bar1"
    client.set_property(handle, "foo", "baz")
    client.remove_property(handle, "a")
    info = client.info(handle)
    assert info.properties["foo"] == "baz"


def test_list_filters_by_property(client, make):
    """Container information for a single container listing container info can filter by property."""
    handle = make(user=False, properties={"foo": f"bar-{id(client)}", "a": "b"})
    make(user=False, properties={"foo": "baz", "a": "b"})
    make(user=False, properties={"baz": "bar", "a": "b"})
    assert client.list({"foo": f"bar-{id(client)}"}) == [handle]
    assert client.list({"matthew": "mcconaughey"}) == []


def test_list_all_containers(client, make):
    """Container information multiple containers should list all containers."""
    handle = make(user=False)
    extra = client.create(models.ContainerSpec())
    try:
        handles = client.list({})
        assert handle in handles
        assert extra in handles
    finally:
        client.destroy(extra)


# ----------------------------------------------------------------------------------- capacity_test.go


def test_capacity(client):
    """Capacity returns the memory in bytes / the disk size in bytes / the schedulable disk capacity in bytes /
    the maximum number of containers."""
    capacity = client.capacity()
    assert capacity.memory_in_bytes > 0
    assert capacity.disk_in_bytes > 0
    assert capacity.schedulable_disk_in_bytes > 0
    assert capacity.max_containers > 0


# ----------------------------------------------------------------------------------- metrics_test.go


@pytest.fixture
def busy(client, make) -> Callable[..., str]:
    """Metrics' JustBeforeEach: a container running `while true; do ls -la; done` (detached)."""

    def create(**spec) -> str:
        handle = make(user=False, **spec)
        client.run(handle, sh("while true; do ls -la; done")).detach()
        return handle

    return create


def test_metrics_cpu(client, busy):
    """Metrics returns the CPU metrics."""
    handle = busy()
    assert eventually(lambda: client.metrics(handle).cpu.usage)


def test_metrics_memory(client, busy):
    """Metrics returns the memory metrics."""
    handle = busy()
    assert eventually(lambda: client.metrics(handle).memory["TotalUsageTowardLimit"])


def test_metrics_pids_current(client, busy):
    """Metrics returns the number of currently running pids."""
    handle = busy()
    assert eventually(lambda: client.metrics(handle).pids.current)


def test_metrics_pids_max_na(client, busy):
    """Metrics returns an N/A value for the max mumber of pids."""
    handle = busy()
    for _ in range(5):  # Consistently
        assert client.metrics(handle).pids.max == 0
        time.sleep(0.05)


def test_metrics_pids_max_with_limit(client, busy):
    """Metrics when there is a pid limit returns the max number of pids."""
    handle = busy(limits=models.Limits(pid=models.PidLimits(max=128)))
    assert eventually(lambda: client.metrics(handle).pids.max == 128)


def test_metrics_age(client, busy):
    """Metrics returns container age."""
    handle = busy()
    assert eventually(lambda: client.metrics(handle).age_ns)


def test_bulk_metrics_has_handle(client, busy):
    """Metrics has the container handle in bulk metrics."""
    handle = busy()
    assert handle in client.bulk_metrics([handle])


def test_bulk_metrics_total_memory(client, busy):
    """Metrics returns total memory usage for the container in bulk metrics."""
    handle = busy()

    def usage() -> int:
        entry = client.bulk_metrics([handle])[handle]
        assert not isinstance(entry, errors.GardenError), entry
        return entry.memory["TotalUsageTowardLimit"]

    assert eventually(usage)
