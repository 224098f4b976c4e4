"""Audit events and the narrow log they are appended to.

Events name their subject by a keyed hash of the ID number (never the number itself), so the trail
can be read per citizen without holding personal data in clear.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: str  # "service:edge", "operator:operator"
    action: str  # "identity.password"
    outcome: str  # "success", "failure", "throttled", "refused"
    subject: str | None = None  # pseudonymous reference (see ``Pseudonymizer``)
    source: str | None = None  # pseudonymous reference of the request source
    detail: dict[str, Any] = field(default_factory=dict)


class AuditLog(Protocol):
    async def append(self, event: AuditEvent) -> None:
        """Return once the event is durable."""


class Pseudonymizer:
    """HMAC-SHA-256 references for personal identifiers in the audit trail."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def ref(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]


class PostgresAuditLog:
    """``audit.events`` in PostgreSQL, with group commit.

    ``append`` returns only when its event is committed, but events appended while a write is in
    flight travel together in the next single INSERT: under load, one round trip carries many events.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._pending: list[tuple[AuditEvent, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, event: AuditEvent) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await asyncio.shield(done)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._insert([event for event, _ in batch])
            except Exception as error:  # every waiter learns of the failure; none is lost silently
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _insert(self, events: list[AuditEvent]) -> None:
        await insert_events(self._pool, events)


INSERT_EVENTS = (
    "INSERT INTO audit.events (actor, action, outcome, subject, source, detail)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])"
)


async def insert_events(connection: asyncpg.Connection | asyncpg.Pool, events: Sequence[AuditEvent]) -> None:
    """Insert ``events`` into ``audit.events`` in one statement: on a connection, inside the caller's
    transaction (a change and its audit rows commit together, or neither does); on a pool, on their own."""
    if not events:
        return
    await connection.execute(
        INSERT_EVENTS,
        [e.actor for e in events],
        [e.action for e in events],
        [e.outcome for e in events],
        [e.subject for e in events],
        [e.source for e in events],
        [json.dumps(e.detail) for e in events],
    )
