"""Issuing agencies as registered with their OAuth clients: the name, and the public JWKS they sign with.

They live where the OpenID Provider keeps its clients (``oidc.clients.jwks``, the same PostgreSQL); the vault
only reads them, and a disabled client's keys count as none. The read is on a delivery's path: it ends at the
caller's deadline (db.bounded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from db.bounded import BoundedPool


@dataclass(frozen=True, slots=True)
class Registered:
    name: str  # the agency's registered name, shown as the issuer of what it delivers
    jwks: dict[str, Any] | None


class IssuerKeys:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = BoundedPool(pool)

    async def issuer(self, client_id: str) -> Registered | None:
        row = await self._pool.fetchrow(
            "SELECT name, jwks FROM oidc.clients WHERE client_id = $1 AND NOT disabled", client_id
        )
        if row is None:
            return None
        return Registered(row["name"], json.loads(row["jwks"]) if row["jwks"] else None)
