"""Storage of the electronic health book (``health.visits``, ``health.extracts``; migration 0019).

The store decides nothing: the service (``issuance.health.service``) validates a visit with the domain
(``issuance.health.visits``) and hands the store what to write and the audit row to write with it. Every change and
every read commits its ``audit.events`` row in the same transaction (``audit.events.insert_events``): a read whose
row cannot be written returns nothing (UNAVAILABLE), so the citizen's access log is complete.

A push is idempotent per ``(client_id, record_id)`` (Decision 4750/QĐ-BYT's MA_LK, the facility's own id):
``INSERT … ON CONFLICT DO NOTHING``, then, when another push owns the key, the stored row is compared by the
SHA-256 of its canonical JSON (``visits.content_hash``): the same content is the stored visit again, other content
``VisitConflict`` (ALREADY_EXISTS). ``(facility_code, record_id)`` is unique as well: the same Ministry code and
record id from another client is ALREADY_EXISTS too (nothing of the other visit is told). Concurrent pushes of one
key serialise on the unique index (PostgreSQL makes the second insert wait for the first transaction), so exactly
one row is ever written.

An extract is recorded once per id (``INSERT … ON CONFLICT (id) DO NOTHING``): the service derives the id from the
citizen and the client's request id, so a retry or a parallel call of one request finds the row already there
(concurrent inserts of one id serialise on the primary key).

What is read is checked: the stored JSON must parse back to a visit (``visits.parse_visit``) whose hash is the
stored one; anything else is ``DataLoss`` (the row was altered outside the platform).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from audit.events import AuditEvent, insert_events
from core import logs
from core.errors import DataLoss, InvalidArgument, Unavailable
from db import outages
from issuance.health.visits import Visit, VisitConflict, content_hash, parse_visit, to_json_value

__all__ = [
    "HealthDatabaseUnavailable",
    "HealthLogUnavailable",
    "HealthStore",
    "PostgresHealthStore",
    "StoredVisit",
]

log = logs.get("health.store")

COLUMNS = "id, client_id, record_id, record, content_sha256, received_at"
# SQL built from this module-level column list, never from input
SELECT_KEY = f"SELECT {COLUMNS} FROM health.visits WHERE client_id = $1 AND record_id = $2"
SELECT_BOOK = (
    f"SELECT {COLUMNS} FROM health.visits WHERE subject = $1 ORDER BY discharged_at DESC, admitted_at DESC, id LIMIT $2"
)
SELECT_ONE = f"SELECT {COLUMNS} FROM health.visits WHERE id = $1 AND subject = $2"
INSERT_VISIT = (
    "INSERT INTO health.visits (id, client_id, record_id, facility_code, subject, record, content_sha256,"
    " admitted_at, discharged_at, received_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10)"
    " ON CONFLICT DO NOTHING RETURNING id"
)
INSERT_EXTRACT = (
    "INSERT INTO health.extracts (id, subject, visit_ids, vault_document_id, issued_at) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (id) DO NOTHING RETURNING vault_document_id"
)
SELECT_EXTRACT = "SELECT vault_document_id FROM health.extracts WHERE id = $1 AND subject = $2"
MAX_BOOK = 2000  # visits read for one book (a lifetime of visits; more is refused rather than cut silently)
UNREACHABLE_MESSAGE = "the health book's database cannot be reached; try again"
LOG_MESSAGE = "the access log cannot be written now, so nothing was read or changed; try again"


class HealthDatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached now (UNAVAILABLE: the same request may succeed later)."""


class HealthLogUnavailable(Unavailable):
    """The audit row could not be inserted, so the read or change was withdrawn (UNAVAILABLE)."""


@dataclass(frozen=True, slots=True)
class StoredVisit:
    """A visit as stored: its platform id, the validated visit, when the platform received it."""

    id: uuid.UUID
    visit: Visit
    received_at: datetime


class HealthStore(Protocol):
    """What the health service needs of its store (``PostgresHealthStore``)."""

    async def push(
        self, stored: StoredVisit, subject: str, audit: Callable[[StoredVisit, str], AuditEvent]
    ) -> tuple[StoredVisit, bool]:
        """Store ``stored`` unless its key is taken: (the visit under the key, whether this call wrote it).

        ``audit(visit, outcome)`` makes the row (``success``, ``replay`` or ``refused``); a different content under
        the key is ``VisitConflict`` after its ``refused`` row committed."""
        ...

    async def pushed(self, client_id: str, record_id: str, audit: AuditEvent) -> StoredVisit | None:
        """The visit ``client_id`` pushed under ``record_id``, read with its audit row."""
        ...

    async def book(self, subject: str, audit: AuditEvent) -> list[StoredVisit]:
        """Every visit of the citizen ``subject`` (newest discharge first), read with its audit row."""
        ...

    async def visit(self, subject: str, visit_id: uuid.UUID, audit: AuditEvent) -> StoredVisit | None:
        """The citizen's visit ``visit_id`` (``None``: no such visit, or another citizen's)."""
        ...

    async def extract(self, extract_id: uuid.UUID, subject: str, audit: AuditEvent) -> str | None:
        """The vault document of the citizen's extract ``extract_id``, read with its audit row; ``None``: none yet."""
        ...

    async def record_extract(
        self,
        extract_id: uuid.UUID,
        subject: str,
        visit_ids: Sequence[uuid.UUID],
        vault_document_id: str,
        issued_at: datetime,
        audit: Callable[[str], AuditEvent],
    ) -> str:
        """Remember an extract delivered into the citizen's vault, once per id: the vault document recorded for it
        (this one, or an earlier call's), with the audit row ``audit("success")`` or ``audit("replay")``."""
        ...


def _reachable() -> contextlib.AbstractAsyncContextManager[None]:
    """A lost or refused PostgreSQL connection is ``Unavailable``; all else passes unchanged (``db.outages``)."""
    return outages.reachable(HealthDatabaseUnavailable, UNREACHABLE_MESSAGE)


async def _audited(connection: asyncpg.Connection, events: list[AuditEvent]) -> None:
    """Insert the rows in the caller's transaction; any refusal of PostgreSQL withdraws the whole transaction."""
    try:
        await insert_events(connection, events)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        log.warning("health.audit_insert_failed", error=type(error).__name__)
        raise HealthLogUnavailable(LOG_MESSAGE) from None


def _json(value: Any) -> dict[str, Any]:
    return dict(json.loads(value) if isinstance(value, str) else value)


def _row_visit(row: asyncpg.Record) -> StoredVisit:
    """The stored row as a validated visit; a row that does not parse back or whose hash differs is DataLoss."""
    try:
        visit = parse_visit(_json(row["record"]), client_id=row["client_id"], now=row["received_at"])
    except (InvalidArgument, ValueError, TypeError) as error:
        log.error("health.row_unreadable", visit_id=str(row["id"]), error=type(error).__name__)
        raise DataLoss("a stored visit record is damaged") from None
    if visit.record_id != row["record_id"] or content_hash(visit) != bytes(row["content_sha256"]):
        log.error("health.row_altered", visit_id=str(row["id"]))
        raise DataLoss("a stored visit record does not match its hash")
    return StoredVisit(row["id"], visit, row["received_at"])


class PostgresHealthStore:
    """``HealthStore`` on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def push(
        self, stored: StoredVisit, subject: str, audit: Callable[[StoredVisit, str], AuditEvent]
    ) -> tuple[StoredVisit, bool]:
        visit = stored.visit
        conflict: StoredVisit | None = None
        async with _reachable(), self._pool.acquire() as connection, connection.transaction():
            written = await connection.fetchval(
                INSERT_VISIT,
                stored.id, visit.facility.client_id, visit.record_id, visit.facility.code, subject,
                json.dumps(to_json_value(visit), ensure_ascii=False), content_hash(visit),
                visit.admitted_at, visit.discharged_at, stored.received_at,
            )  # fmt: skip
            if written is not None:
                await _audited(connection, [audit(stored, "success")])
                return stored, True
            row = await connection.fetchrow(SELECT_KEY, visit.facility.client_id, visit.record_id)
            if row is None:  # the Ministry code's record id is another client's (visits are never deleted)
                raise VisitConflict(
                    f"facility_record_id: record {visit.record_id} of facility {visit.facility.code} was pushed"
                    " by another registered client"
                )
            existing = _row_visit(row)
            if bytes(row["content_sha256"]) == content_hash(visit):
                await _audited(connection, [audit(existing, "replay")])
                return existing, False
            conflict = existing
            await _audited(connection, [audit(existing, "refused")])
        raise VisitConflict(
            f"facility_record_id: record {visit.record_id} was pushed already with other content (visit {conflict.id})"
        )

    async def pushed(self, client_id: str, record_id: str, audit: AuditEvent) -> StoredVisit | None:
        async with _reachable(), self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(SELECT_KEY, client_id, record_id)
            await _audited(connection, [audit])
        return _row_visit(row) if row is not None else None

    async def book(self, subject: str, audit: AuditEvent) -> list[StoredVisit]:
        async with _reachable(), self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(SELECT_BOOK, subject, MAX_BOOK + 1)
            if len(rows) > MAX_BOOK:
                raise DataLoss(f"the health book holds more than {MAX_BOOK} visits; it cannot be shown whole")
            await _audited(connection, [audit])
        return [_row_visit(row) for row in rows]

    async def visit(self, subject: str, visit_id: uuid.UUID, audit: AuditEvent) -> StoredVisit | None:
        async with _reachable(), self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(SELECT_ONE, visit_id, subject)
            if row is None:
                return None
            await _audited(connection, [audit])
        return _row_visit(row)

    async def extract(self, extract_id: uuid.UUID, subject: str, audit: AuditEvent) -> str | None:
        async with _reachable(), self._pool.acquire() as connection, connection.transaction():
            found = await connection.fetchval(SELECT_EXTRACT, extract_id, subject)
            if found is None:
                return None
            await _audited(connection, [audit])
        return str(found)

    async def record_extract(
        self,
        extract_id: uuid.UUID,
        subject: str,
        visit_ids: Sequence[uuid.UUID],
        vault_document_id: str,
        issued_at: datetime,
        audit: Callable[[str], AuditEvent],
    ) -> str:
        async with _reachable(), self._pool.acquire() as connection, connection.transaction():
            written = await connection.fetchval(
                INSERT_EXTRACT, extract_id, subject, list(visit_ids), vault_document_id, issued_at
            )
            recorded = written
            if recorded is None:  # an earlier or parallel call of the same request recorded it (its id is the key)
                recorded = await connection.fetchval(SELECT_EXTRACT, extract_id, subject)
                if recorded is None:
                    raise DataLoss("an extract id is recorded for another citizen")
            await _audited(connection, [audit("success" if written is not None else "replay")])
        return str(recorded)
