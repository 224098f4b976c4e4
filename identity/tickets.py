"""Login tickets: what the password step hands to the TOTP step, sealed so it needs no storage.

A ticket is AES-GCM over ``{sub, src, exp}``, bound to the request source: stolen, it is useless
from another device, and it expires after five minutes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from core.keys.sealing import Sealer, b64, unb64

LIFETIME = 300
MAX_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Ticket:
    id_number: str
    source: str
    expires_at: int


class Tickets:
    def __init__(self, key: bytes) -> None:
        """``key``: the ``login-ticket`` purpose's."""
        self._sealer = Sealer(key)

    def issue(self, id_number: str, source: str, now: float | None = None) -> tuple[str, Ticket]:
        ticket = Ticket(id_number, source, int(now if now is not None else time.time()) + LIFETIME)
        body = json.dumps({"sub": id_number, "exp": ticket.expires_at}, separators=(",", ":")).encode()
        return b64(self._sealer.seal(body, source.encode())), ticket

    def read(self, token: str, source: str, now: float | None = None) -> Ticket | None:
        """The ticket, or None when it is forged, from another source, or expired."""
        if not token or len(token) > MAX_LENGTH:
            return None
        raw = unb64(token)
        body = self._sealer.open(raw, source.encode()) if raw else None
        if body is None:
            return None
        claims = json.loads(body)
        if claims["exp"] < (now if now is not None else time.time()):
            return None
        return Ticket(claims["sub"], source, claims["exp"])
