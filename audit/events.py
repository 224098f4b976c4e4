"""Audit events and the narrow log they are appended to.

Events name their subject by a keyed hash of the ID number (never the number itself), so the trail
can be read per citizen without holding personal data in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: str          # "service:edge", "operator:alice"
    action: str         # "identity.password.verify"
    outcome: str        # "success", "failure", "throttled", "refused"
    subject: str | None = None  # pseudonymous reference (see ``Pseudonymizer``)
    source: str | None = None   # pseudonymous reference of the request source
    detail: dict[str, Any] = field(default_factory=dict)


class AuditLog(Protocol):
    async def append(self, event: AuditEvent) -> None: ...


class Pseudonymizer:
    """HMAC-SHA-256 references for personal identifiers in the audit trail."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def ref(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]


class PostgresAuditLog:
    """``audit.events`` in PostgreSQL."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def append(self, event: AuditEvent) -> None:
        await self._pool.execute(
            "INSERT INTO audit.events (actor, action, outcome, subject, source, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            event.actor,
            event.action,
            event.outcome,
            event.subject,
            event.source,
            json.dumps(event.detail),
        )
