"""A minimal Docker token server for the test lab: RS256 JWTs that Debian's docker-registry verifies.

Run as `python -m tests.support.token_server --port P --key K --cert C --issuer I --service S --users FILE`.
Users file: JSON `{"alice": "secret"}`; known users get pull+push everywhere, anonymous clients get pull on
`public/*` only, wrong credentials get 401.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import time
import uuid

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def basic_user(header: str, users: dict[str, str]) -> str | None:
    """'' for anonymous, the user for good credentials, None for bad ones."""
    if not header:
        return ""
    try:
        scheme, value = header.split(" ", 1)
        user, _, password = base64.b64decode(value).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return user if scheme.lower() == "basic" and users.get(user) == password else None


def granted(user: str, scope: str) -> dict | None:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if kind != "repository" or not name:
        return None
    wanted = [a for a in actions.split(",") if a]
    allowed = wanted if user else [a for a in wanted if a == "pull" and name.startswith("public/")]
    return {"type": "repository", "name": name, "actions": allowed}


def make_app(args: argparse.Namespace) -> web.Application:
    key = serialization.load_pem_private_key(open(args.key, "rb").read(), None)
    cert = x509.load_pem_x509_certificate(open(args.cert, "rb").read())
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    users = json.load(open(args.users))

    async def token(request: web.Request) -> web.Response:
        user = basic_user(request.headers.get("Authorization", ""), users)
        if user is None:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                     status=401)
        access = [g for s in request.query.getall("scope", []) if (g := granted(user, s))]
        now = int(time.time())
        claims = {"iss": args.issuer, "sub": user, "aud": request.query.get("service", args.service),
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        jwt = f"{signing_input}.{b64url(signature)}"
        return web.json_response({"token": jwt, "access_token": jwt, "expires_in": 300})

    app = web.Application()
    app.router.add_get("/token", token)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--key", "--cert", "--issuer", "--service", "--users"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(make_app(args), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
