"""Garden router: Go (rata/pat) matching rules over the 28-route table."""

from __future__ import annotations

import pytest

from garden.api.routes import ROUTES, Match, NoMatch, Router

ROUTER = Router()


def test_route_table_is_complete() -> None:
    assert len(ROUTES) == 28 and len({name for name, _, _ in ROUTES}) == 28


@pytest.mark.parametrize(("method", "path", "name", "params"), [
    ("GET", "/ping", "Ping", {}),
    ("GET", "/containers", "List", {}),
    ("POST", "/containers", "Create", {}),
    ("GET", "/containers/bulk_info", "BulkInfo", {}),
    ("GET", "/containers/bulk_metrics", "BulkMetrics", {}),
    ("DELETE", "/containers/bulk_info", "Destroy", {"handle": "bulk_info"}),
    ("GET", "/containers/c1/info", "Info", {"handle": "c1"}),
    ("GET", "/containers//info", "Info", {"handle": ""}),
    ("POST", "/containers/c1/net/out/bulk", "BulkNetOut", {"handle": "c1"}),
    ("POST", "/containers/c1/net/out", "NetOut", {"handle": "c1"}),
    ("GET", "/containers/c1/processes/p1", "Attach", {"handle": "c1", "pid": "p1"}),
    ("GET", "/containers/c1/processes/p1/attaches/7/stderr", "Stderr",
     {"handle": "c1", "pid": "p1", "streamid": "7"}),
    ("PUT", "/containers/c%2F1/properties/a+b%20c%2Bd", "SetProperty", {"handle": "c/1", "key": "a b c+d"}),
])
def test_matches(method: str, path: str, name: str, params: dict[str, str]) -> None:
    assert ROUTER.resolve(method, path) == Match(name, params)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/nope", ()),
    ("PUT", "/containers/c1/properties/k/with%20space", ()),
    ("GET", "/containers/c1/info/", ()),
    ("PATCH", "/containers", ("GET", "POST")),
    ("POST", "/containers/c1/properties/k", ("DELETE", "GET", "PUT")),
    ("GET", "/containers/c1", ("DELETE",)),
])
def test_no_match(method: str, path: str, allowed: tuple[str, ...]) -> None:
    assert ROUTER.resolve(method, path) == NoMatch(allowed)
