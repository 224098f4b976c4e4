"""Test helpers for bearer tokens: a signing key that mints RFC 9068 access tokens, and a tiny JWKS server."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from core.callers import service_audience

ISSUER = "http://localhost:8080"
AUDIENCE = service_audience("bearer-test")
CITIZEN = "QWxhZGRpbi1vcGVuLXNlc2FtZQ"  # an opaque subject (identity.oidc.subjects)
PORTAL = "portal-0123456789abcdef"
AGENCY = "agency-fedcba9876543210"


class Signer:
    """One OP signing key (ES256 on P-256, or RS256 on RSA-2048) with its kid."""

    def __init__(self, kid: str, alg: str = "ES256") -> None:
        self.kid = kid
        self.alg = alg
        parameters: Any = {"kid": kid, "use": "sig", "alg": alg}
        if alg == "ES256":
            self.key: ECKey | RSAKey = ECKey.generate_key("P-256", parameters=parameters, private=True)
        else:
            self.key = RSAKey.generate_key(2048, parameters=parameters, private=True)

    @property
    def jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def mint(self, claims: dict[str, Any] | None = None, **header: Any) -> str:
        head = {k: v for k, v in {"alg": self.alg, "kid": self.kid, "typ": "at+jwt", **header}.items() if v is not None}
        body = claims if claims is not None else citizen_claims()
        return jwt.encode(head, body, self.key, algorithms=[head["alg"]], default_type=None)


def citizen_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": CITIZEN,
        "aud": AUDIENCE,
        "client_id": PORTAL,
        "scope": "openid profile registry.read",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "auth_time": now - 5,
        "acr": "2",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def client_claims(**overrides: Any) -> dict[str, Any]:
    base = citizen_claims(sub=AGENCY, client_id=AGENCY, scope="registry.read vault.read", auth_time=None, acr=None)
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An ``alg: none`` style token: header and claims, empty signature."""
    return f"{b64(header)}.{b64(claims)}."


class JwksServer:
    """Answers ``GET /jwks`` with ``keys`` (swap it to rotate); counts requests; ``fail`` answers 503."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.requests = 0
        self.fail = False
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/jwks"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            target = request.split(b"\r\n", 1)[0].split(b" ")
            if len(target) >= 2 and target[0] == b"GET" and target[1] == b"/jwks":
                self.requests += 1
                status, body = (b"503 Service Unavailable", b"{}") if self.fail else (b"200 OK", self._body())
            else:
                status, body = b"404 Not Found", b"{}"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _body(self) -> bytes:
        return json.dumps({"keys": self.keys}).encode()
