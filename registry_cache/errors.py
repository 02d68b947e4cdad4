"""OCI distribution error bodies: `{"errors": [{"code", "message", "detail"}]}`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class RegistryError(Exception):
    """An error answered to a client with an OCI JSON error body."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail
        self.headers = headers or {}

    def body(self) -> dict:
        return {"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]}

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=json.dumps(self.body()), content_type="application/json",
                            headers=self.headers)


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError(404, "BLOB_UNKNOWN", "blob unknown to registry", digest)


def manifest_unknown(name: str, ref: str) -> RegistryError:
    return RegistryError(404, "MANIFEST_UNKNOWN", "manifest unknown", {"name": name, "reference": ref})


def name_unknown(name: str) -> RegistryError:
    return RegistryError(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
