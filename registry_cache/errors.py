"""OCI distribution error bodies: `{"errors": [{"code", "message", "detail"}]}`, and the errors the cache answers.

Codes on /v2/ routes come from the distribution spec's error-code table, plus the legacy `TAG_INVALID` the spec
names and distribution's `PAGINATION_NUMBER_INVALID`.
"""

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


def _because(message: str, why: str) -> str:
    return f"{message}: {why}" if why else message


def blob_unknown(digest: str, why: str = "") -> RegistryError:
    return RegistryError(404, "BLOB_UNKNOWN", _because("blob unknown to registry", why), digest)


def manifest_unknown(name: str, ref: str, why: str = "") -> RegistryError:
    return RegistryError(404, "MANIFEST_UNKNOWN", _because("manifest unknown", why), {"name": name, "reference": ref})


def name_unknown(name: str) -> RegistryError:
    return RegistryError(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})


def name_invalid(name: str) -> RegistryError:
    return RegistryError(400, "NAME_INVALID", "invalid repository name", {"name": name})


def digest_invalid(digest: str, why: str) -> RegistryError:
    return RegistryError(400, "DIGEST_INVALID", _because("invalid digest", why), {"digest": digest})


def tag_invalid(tag: str) -> RegistryError:
    return RegistryError(400, "TAG_INVALID", "invalid tag", {"tag": tag})


def manifest_invalid(why: str, status: int = 400) -> RegistryError:
    return RegistryError(status, "MANIFEST_INVALID", _because("manifest invalid", why))


def upload_unknown(name: str) -> RegistryError:
    return RegistryError(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry: the cache starts no uploads",
                         {"name": name})


def unsupported_endpoint(path: str) -> RegistryError:
    return RegistryError(404, "UNSUPPORTED", "the cache does not serve this endpoint", {"path": path})


def method_unsupported(method: str, allow: str) -> RegistryError:
    return RegistryError(405, "UNSUPPORTED", f"{method} is not supported here", {"method": method},
                         {"Allow": allow})
