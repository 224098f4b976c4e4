"""Pushed authorization requests (RFC 9126): the stored requests every edge process can resolve.

A client posts its authorization request's parameters to ``/par`` (§2.1, authenticated as at the token endpoint)
and gets a ``request_uri`` (§2.2) ``urn:ietf:params:oauth:request_uri:<256 random bits>`` that lives ``PAR_TTL``
seconds (FAPI 2.0 Security Profile §5.3.2.2: under 600 s). The authorization endpoint resolves it (§4) once: the
row is deleted as it is read (``claim``: DELETE … RETURNING, so of parallel uses one wins), only for the client
that pushed it, and an expired one is refused (``invalid_request_uri``, RFC 9101 §6.2). Only a digest of the
``request_uri`` is stored: a database reader cannot start another's authorization.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Protocol

import asyncpg

URN = "urn:ietf:params:oauth:request_uri:"
PAR_TTL = 90  # seconds (RFC 9126 §2.2 expires_in; FAPI 2.0 §5.3.2.2: under 600)
MAX_REQUEST_URI = 200


def _digest(request_uri: str) -> bytes:
    return hashlib.sha256(request_uri.encode()).digest()


class PushedRequests(Protocol):
    """What the pushed authorization request use cases need of storage."""

    async def push(self, client_id: str, params: list[tuple[str, str]], ttl: int) -> str:
        """Store an authorization request's parameters; return its new ``request_uri``."""

    async def claim(self, request_uri: str, client_id: str) -> list[tuple[str, str]] | None:
        """The parameters pushed as ``request_uri`` by ``client_id``, once: None when unknown, used, another
        client's or expired."""


class PostgresPushedRequests:
    """``oidc.pushed_requests`` (migration 0020)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def push(self, client_id: str, params: list[tuple[str, str]], ttl: int) -> str:
        request_uri = URN + secrets.token_urlsafe(32)
        async with self._pool.acquire() as conn, conn.transaction():
            # the client's requests that expired unused go as it pushes a new one: the table holds live ones
            await conn.execute(
                "DELETE FROM oidc.pushed_requests WHERE client_id = $1 AND expires_at < now()", client_id
            )
            await conn.execute(
                "INSERT INTO oidc.pushed_requests (uri_hash, client_id, params, expires_at)"
                " VALUES ($1, $2, $3::jsonb, now() + make_interval(secs => $4))",
                _digest(request_uri), client_id, json.dumps(params), float(ttl),
            )  # fmt: skip
        return request_uri

    async def claim(self, request_uri: str, client_id: str) -> list[tuple[str, str]] | None:
        if not request_uri.startswith(URN) or len(request_uri) > MAX_REQUEST_URI:
            return None
        row = await self._pool.fetchrow(
            "DELETE FROM oidc.pushed_requests WHERE uri_hash = $1 AND client_id = $2"
            " RETURNING params, expires_at > now() AS live",
            _digest(request_uri), client_id,
        )  # fmt: skip
        if row is None or not row["live"]:
            return None
        return [(str(k), str(v)) for k, v in json.loads(row["params"])]
