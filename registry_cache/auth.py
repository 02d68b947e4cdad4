"""Access control: users from a file, Basic or cache-issued Bearer tokens, Docker token flow.

Users file, one per line: `name:scrypt$<salt hex>$<hash hex>:perm[,perm]` with perms `pull`, `stage`,
`admin` (unpin, gc). `hash_password` makes the middle field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from registry_cache.errors import RegistryError

SERVICE = "trellis-cache"
PERMS = ("pull", "stage", "admin")


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Identity:
    name: str
    perms: frozenset[str]


class Authenticator:
    """Checks Basic credentials against the users file and issues/verifies HMAC-signed bearer tokens."""

    def __init__(self, users_file: Path | None, token_ttl: int = 3600) -> None:
        self.users: dict[str, tuple[str, frozenset[str]]] = {}
        if users_file:
            for n, line in enumerate(users_file.read_text().splitlines(), 1):
                if not line.strip() or line.startswith("#"):
                    continue
                try:
                    name, hashed, perms = line.strip().split(":")
                except ValueError:
                    raise ValueError(f"{users_file}:{n}: expected name:hash:perms") from None
                self.users[name] = (hashed, frozenset(p for p in perms.split(",") if p in PERMS))
        self.key = secrets.token_bytes(32)  # tokens do not survive a restart; clients fetch new ones
        self.ttl = token_ttl
        self._verified: dict[tuple[str, str], bool] = {}  # scrypt is slow: remember good (user, password)

    def check_password(self, name: str, password: str) -> Identity | None:
        entry = self.users.get(name)
        if entry is None:
            return None
        hashed, perms = entry
        key = (name, hashlib.sha256(password.encode()).hexdigest())
        if key not in self._verified:
            try:
                _, salt, _ = hashed.split("$")
                ok = hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), hashed)
            except ValueError:
                ok = False
            if not ok:
                return None
            self._verified[key] = True
        return Identity(name, perms)

    def issue(self, who: Identity) -> str:
        claims = {"sub": who.name, "perms": sorted(who.perms), "exp": int(time.time()) + self.ttl}
        body = _b64(json.dumps(claims).encode())
        return f"{body}.{_b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())}"

    def verify(self, token: str) -> Identity | None:
        body, _, sig = token.partition(".")
        try:
            expected = _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())
            good = hmac.compare_digest(sig, expected)  # as text: base64's unused low bits must match too
            claims = json.loads(_unb64(body)) if good else None
        except (ValueError, TypeError, binascii.Error):  # TypeError: a non-ASCII signature
            return None
        if not claims or claims.get("exp", 0) < time.time():
            return None
        return Identity(claims["sub"], frozenset(claims["perms"]))

    def identify(self, request: web.Request) -> Identity | None:
        """The caller from Authorization (Basic or Bearer), or None."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return self.verify(value.strip())
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return None
            return self.check_password(name, password)
        return None

    def require(self, request: web.Request, perm: str) -> Identity:
        """The caller, or UNAUTHORIZED (with the token challenge) / DENIED."""
        who = self.identify(request)
        if who is None:
            realm = f"{request.scheme}://{request.host}/token"
            raise RegistryError(401, "UNAUTHORIZED", "authentication required", None,
                                {"WWW-Authenticate": f'Bearer realm="{realm}",service="{SERVICE}"'})
        if perm not in who.perms:
            raise RegistryError(403, "DENIED", f"{who.name} may not {perm}", None)
        return who
