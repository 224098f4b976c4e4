"""Sealed, self-contained protocol state: authorization codes, SSO sessions, pending sign-ins.

Ory's lesson from tuning Hydra: transient flow state can travel with the browser or the client,
AEAD-protected, so a sign-in touches the database once (when the code is redeemed). What must be
single-use or revocable (codes, sessions) carries an id that the store remembers only when it is used
up (``oidc.used_codes``, ``oidc.ended_sessions``).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from core.keys.sealing import Sealer, b64, unb64

MAX_TOKEN = 4096


class SealedCodec:
    """JSON claims sealed with AES-256-GCM under the key of its own purpose (``key``), with an expiry."""

    def __init__(self, key: bytes, purpose: str) -> None:
        self._sealer = Sealer(key)
        self._aad = purpose.encode()

    def encode(self, claims: dict[str, Any], ttl: int) -> str:
        body = {**claims, "exp": int(time.time()) + ttl, "jti": claims.get("jti") or secrets.token_urlsafe(12)}
        return b64(self._sealer.seal(json.dumps(body, separators=(",", ":")).encode(), self._aad))

    def decode(self, token: str | None) -> dict[str, Any] | None:
        """The claims, or None when the token is missing, forged, from another purpose or expired."""
        if not token or len(token) > MAX_TOKEN:
            return None
        raw = unb64(token)
        body = self._sealer.open(raw, self._aad) if raw else None
        if body is None:
            return None
        claims: dict[str, Any] = json.loads(body)
        if claims.get("exp", 0) < time.time():
            return None
        return claims
