"""The 28 Garden routes and a router with Go's (rata/pat) matching rules.

Matching is on the escaped path, first match in table order wins, `:param` captures stop at `/`,
may be empty and are unescaped with query rules (`+` is a space). No match: Go's 404 text page;
path known under another method: 405 with `Allow`.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote_plus

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("Ping", "GET", "/ping"),
    ("Capacity", "GET", "/capacity"),
    ("List", "GET", "/containers"),
    ("Create", "POST", "/containers"),
    ("Info", "GET", "/containers/:handle/info"),
    ("BulkInfo", "GET", "/containers/bulk_info"),
    ("BulkMetrics", "GET", "/containers/bulk_metrics"),
    ("Destroy", "DELETE", "/containers/:handle"),
    ("Stop", "PUT", "/containers/:handle/stop"),
    ("StreamIn", "PUT", "/containers/:handle/files"),
    ("StreamOut", "GET", "/containers/:handle/files"),
    ("CurrentBandwidthLimits", "GET", "/containers/:handle/limits/bandwidth"),
    ("CurrentCPULimits", "GET", "/containers/:handle/limits/cpu"),
    ("CurrentDiskLimits", "GET", "/containers/:handle/limits/disk"),
    ("CurrentMemoryLimits", "GET", "/containers/:handle/limits/memory"),
    ("NetIn", "POST", "/containers/:handle/net/in"),
    ("NetOut", "POST", "/containers/:handle/net/out"),
    ("BulkNetOut", "POST", "/containers/:handle/net/out/bulk"),
    ("Stdout", "GET", "/containers/:handle/processes/:pid/attaches/:streamid/stdout"),
    ("Stderr", "GET", "/containers/:handle/processes/:pid/attaches/:streamid/stderr"),
    ("Run", "POST", "/containers/:handle/processes"),
    ("Attach", "GET", "/containers/:handle/processes/:pid"),
    ("SetGraceTime", "PUT", "/containers/:handle/grace_time"),
    ("Properties", "GET", "/containers/:handle/properties"),
    ("Property", "GET", "/containers/:handle/properties/:key"),
    ("SetProperty", "PUT", "/containers/:handle/properties/:key"),
    ("RemoveProperty", "DELETE", "/containers/:handle/properties/:key"),
    ("Metrics", "GET", "/containers/:handle/metrics"),
)


class Match(NamedTuple):
    name: str
    params: dict[str, str]


class NoMatch(NamedTuple):
    allowed: tuple[str, ...]  # empty: unknown path (404); else methods for the 405 `Allow` header


def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r":(\w+)", pattern)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]*)" for i, p in enumerate(parts))
    return re.compile(regex)


class Router:
    """Resolves (method, escaped path) to a route name and its unescaped params."""

    def __init__(self, routes: tuple[tuple[str, str, str], ...] = ROUTES):
        self._by_method: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        for name, method, pattern in routes:
            self._by_method.setdefault(method, []).append((_compile(pattern), name))

    def resolve(self, method: str, path: str) -> Match | NoMatch:
        for regex, name in self._by_method.get(method, ()):
            m = regex.fullmatch(path)
            if m:
                return Match(name, {k: unquote_plus(v) for k, v in m.groupdict().items()})
        allowed = tuple(sorted(
            other for other, table in self._by_method.items()
            if other != method and any(regex.fullmatch(path) for regex, _ in table)
        ))
        return NoMatch(allowed)
