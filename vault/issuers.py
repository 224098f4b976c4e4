"""The signing keys of issuing agencies: the public JWKS each agency registered with its OAuth client.

They live where the OpenID Provider keeps its clients (``oidc.clients.jwks``, the same PostgreSQL); the vault
only reads them, and a disabled client's keys count as none.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg


class IssuerKeys:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def jwks(self, client_id: str) -> dict[str, Any] | None:
        raw = await self._pool.fetchval(
            "SELECT jwks FROM oidc.clients WHERE client_id = $1 AND NOT disabled", client_id
        )
        return json.loads(raw) if raw else None
