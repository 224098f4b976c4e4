"""What the edge publishes for verifiers of issued certificates: the status lists and the issuer's keys.

- ``GET /statuslists/{id}``: the Status List Token of list ``id`` (draft-ietf-oauth-status-list §8.1: the
  signed ``statuslist+jwt`` as is, ``Content-Type: application/statuslist+jwt``), cached at most the token's
  ``ttl`` (§5.1, ``Cache-Control: max-age``; never beyond its ``exp``); an unknown list is 404 with a JSON
  error body.
- ``GET /.well-known/jwt-vc-issuer`` (and ``/.well-known/jwt-vc-issuer/<path>`` for an issuer URL with a path):
  the SD-JWT VC Issuer Metadata (draft-ietf-oauth-sd-jwt-vc §5): ``issuer`` — the edge's URL (with the path
  the request names, §5.1: the metadata URL is the issuer's with ``/.well-known/jwt-vc-issuer`` inserted after
  the host) — and ``jwks``, the issuer's public keys (``issuance.issuer_keys`` rows of use 'credential'): what
  SD-JWT VCs, QR payloads and status lists are verified with.
- ``GET /issuance/document-ca.pem``: the trust root a PDF's PAdES signature is checked against: the
  self-signed (CA) certificates of the 'document' rows' ``chain_pem`` (the signer's certificate and its chain),
  as ``/verify`` takes them (services/edge/verify_routes.py).

Everything is read with the edge's own role (``dinhdanh_edge``: SELECT on ``issuance.status_lists`` and
``issuance.issuer_keys``) through a small pool opened on the first request from the process's settings (as
services/edge/log_routes.py and verify_routes.py do); nothing here signs (the edge holds no issuer key). PostgreSQL
unreachable is 503.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import InvalidArgument, Unavailable
from core.settings import Settings
from db.pool import open_pool
from issuance.issuer_keys import ALGORITHM, b64url_decode
from issuance.revocation import CONTENT_TYPE
from issuance.status_store import PostgresPublications

MAX_LIST_ID = 2**31 - 1
POOL_SIZE = 2
KEYS_CACHE = "public, max-age=300"
PEM = "application/pem-certificate-chain"  # RFC 8555 §9.1
ISSUER_PATHS = ("",)  # the issuer URLs whose metadata is served: the edge's (the credentials' iss)
PUBLIC = ("kty", "crv", "x", "y")


def _error(status: int, error: str, description: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status,
                        headers={"Cache-Control": "no-store", **headers})  # fmt: skip


def _unavailable() -> JSONResponse:
    return _error(503, "temporarily_unavailable", "the issuance publications cannot be read now; try again",
                  **{"Retry-After": "1"})  # fmt: skip


def _claims(token: str) -> dict[str, Any]:
    """The payload of a token the issuance service signed and stored (read for its ``ttl`` and ``exp``)."""
    try:
        claims = json.loads(b64url_decode(token.split(".")[1]))
    except (IndexError, ValueError, UnicodeDecodeError, InvalidArgument):
        return {}
    return claims if isinstance(claims, dict) else {}


def _max_age(claims: dict[str, Any]) -> int:
    ttl = claims.get("ttl")
    age = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else 60
    exp = claims.get("exp")
    if isinstance(exp, int) and not isinstance(exp, bool):
        age = min(age, max(0, exp - int(time.time())))
    return age


def _accepts_jwt(accept: str) -> bool:
    """Whether an ``Accept`` header (RFC 9110 §12.5.1) admits ``application/statuslist+jwt`` with a non-zero
    weight (§8.1: a Relying Party may ask for the CWT form, which is not served here: 406). No header admits it."""
    if not accept.strip():
        return True
    for part in accept.split(","):
        media, *parameters = (piece.strip().lower() for piece in part.split(";"))
        if media not in (CONTENT_TYPE, "application/*", "*/*"):
            continue
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            return True
    return False


def _public_jwk(kid: str, jwk: dict[str, Any]) -> dict[str, Any]:
    """Only the public members of a stored JWK (a private ``d`` never leaves, whatever the row holds)."""
    return {**{name: jwk[name] for name in PUBLIC if name in jwk}, "kid": kid, "use": "sig", "alg": ALGORITHM}


def _roots(chains: list[str]) -> list[str]:
    """The self-signed (CA) certificates of the document chains, PEM, each once: the roots a PDF signer's
    certificate must chain to (the signer's own certificate is not a trust anchor)."""
    roots: dict[bytes, str] = {}
    for pem in chains:
        try:
            certificates = x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []
        except ValueError:
            continue
        for certificate in certificates:
            if certificate.subject == certificate.issuer:
                roots.setdefault(certificate.fingerprint(hashes.SHA256()),
                                 certificate.public_bytes(serialization.Encoding.PEM).decode())  # fmt: skip
    return list(roots.values())


class Publications:
    """The edge's reader of ``issuance.status_lists`` and ``issuance.issuer_keys``; the pool and the issuer URL
    come from the process's settings on first use unless given."""

    def __init__(self, pool: asyncpg.Pool | None = None, issuer: str | None = None) -> None:
        self._reader = None if pool is None else PostgresPublications(pool)
        self._pool = pool
        self._issuer = issuer
        self._opening = asyncio.Lock()

    async def _publications(self) -> PostgresPublications:
        if self._reader is None:
            async with self._opening:
                if self._reader is None:
                    try:
                        self._pool = await open_pool(Settings().postgres_dsn, POOL_SIZE)
                    except (OSError, asyncpg.PostgresError) as error:
                        raise Unavailable(f"the database cannot be reached ({type(error).__name__})") from None
                    self._reader = PostgresPublications(self._pool)
        return self._reader

    def issuer(self) -> str:
        if self._issuer is None:
            self._issuer = Settings().issuer
        return self._issuer.rstrip("/")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = self._reader = None

    async def status_list(self, request: Request) -> Response:
        if not _accepts_jwt(request.headers.get("accept", "")):
            return _error(406, "not_acceptable", f"the status lists are served as {CONTENT_TYPE} only")
        text = request.path_params["list_id"]
        if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > MAX_LIST_ID:
            return _error(404, "not_found", "no such status list")
        try:
            published = await (await self._publications()).status_list(int(text))
        except Unavailable:
            return _unavailable()
        if published is None:
            return _error(404, "not_found", "no such status list")
        headers = {
            "Cache-Control": f"public, max-age={_max_age(_claims(published.token))}",
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        }
        return Response(published.token, media_type=CONTENT_TYPE, headers=headers)

    async def issuer_metadata(self, request: Request) -> Response:
        path = request.path_params.get("path", "")
        path = f"/{path}" if path else ""
        if path not in ISSUER_PATHS:
            return _error(404, "not_found", "no issuer is known at this path")
        try:
            keys = await (await self._publications()).issuer_keys("credential")
        except Unavailable:
            return _unavailable()
        if not keys:
            return _error(503, "temporarily_unavailable", "the issuer has not published its keys yet",
                          **{"Retry-After": "5"})  # fmt: skip
        metadata = {"issuer": self.issuer() + path, "jwks": {"keys": [_public_jwk(k.kid, k.public_jwk) for k in keys]}}
        return JSONResponse(metadata, headers={"Cache-Control": KEYS_CACHE, "Access-Control-Allow-Origin": "*"})

    async def document_ca(self, request: Request) -> Response:
        try:
            keys = await (await self._publications()).issuer_keys("document")
        except Unavailable:
            return _unavailable()
        roots = _roots([key.chain_pem for key in keys])
        if not roots:
            return _error(404, "not_found", "no document-signing chain is published yet")
        return Response("".join(roots), media_type=PEM,
                        headers={"Cache-Control": KEYS_CACHE, "X-Content-Type-Options": "nosniff"})  # fmt: skip


def routes(publications: Publications | None = None) -> list[Route]:
    """The three publications (see the module docstring)."""
    served = publications or Publications()
    return [
        Route("/statuslists/{list_id}", served.status_list),
        Route("/.well-known/jwt-vc-issuer", served.issuer_metadata),
        Route("/.well-known/jwt-vc-issuer/{path:path}", served.issuer_metadata),
        Route("/issuance/document-ca.pem", served.document_ca),
    ]
