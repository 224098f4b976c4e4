"""PostgreSQL storage of dossiers (``issuance.dossiers``, ``issuance.dossier_events``, migration 0018).

The store decides nothing: a status change locks the dossier's row (``SELECT … FOR UPDATE``), runs the domain's
rule on the stored status (``issuance.dossiers.transition``: the actor first, then the status) and writes the new
status, its ``dossier_events`` row and its ``audit.events`` row in one transaction, so concurrent decisions
serialise on the row and the history, the log and the status never disagree. An approval makes the dossier due
to the issuing worker at once (``next_issue_at = now()``, ``issuance.issuing``).

Opening a dossier is idempotent: ``INSERT … ON CONFLICT (requester_ref, request_id) DO NOTHING``; of two
concurrent applications with one request id, the second waits for the first's commit and then reads its dossier.

A lost or refused connection is ``Unavailable``; an audit row PostgreSQL refuses rolls the change back and is
``Unavailable`` too (the log must be complete).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from audit.events import AuditEvent, insert_events
from core import logs
from core.errors import NotFound, Unavailable
from db import outages
from db.bounded import BoundedPool
from issuance import dossiers
from issuance.dossiers import Actor, Event, Status
from issuance.forms import FormNo, RequesterKind
from issuance.store import (
    Cursor,
    IssuerKey,
    NewDossier,
    StoredCredential,
    StoredDossier,
    StoredEvent,
    TransitionAudit,
    fee_from_json,
    fee_json,
    fields_from_json,
    fields_json,
)

log = logs.get("issuance.store")

COLUMNS = (
    "id, tracking_number, request_id, requester, requester_ref, client_id, authorisation_ref, legal_basis,"
    " id_number, subject, form, purpose, answers, fields, fee, working_days, deadline, received_at, status,"
    " status_changed_at, rejection_reason, clean_record, certificate_id, credential_status, vault_document_id"
)
# SQL built from these module-level constants, never from input
SELECT_ONE = f"SELECT {COLUMNS} FROM issuance.dossiers WHERE id = $1"  # noqa: S608
LOCK_ONE = SELECT_ONE + " FOR UPDATE"
SELECT_REQUEST = f"SELECT {COLUMNS} FROM issuance.dossiers WHERE requester_ref = $1 AND request_id = $2"  # noqa: S608
SELECT_MINE = (
    f"SELECT {COLUMNS} FROM issuance.dossiers"  # noqa: S608
    " WHERE requester IN ('SELF', 'REPRESENTATIVE') AND (requester_ref = $1 OR subject = $1)"
    " AND ($2::timestamptz IS NULL OR (received_at, id) < ($2, $3::uuid))"
    " ORDER BY received_at DESC, id DESC LIMIT $4"
)
SELECT_STATUS = (
    f"SELECT {COLUMNS} FROM issuance.dossiers WHERE status = $1"  # noqa: S608
    " AND ($2::date IS NULL OR deadline < $2) AND ($3::date IS NULL OR (deadline, id) > ($3, $4::uuid))"
    " ORDER BY deadline, id LIMIT $5"
)
SELECT_EVENTS = (
    "SELECT dossier_id, seq, status, at, actor, reason, officer FROM issuance.dossier_events"
    " WHERE dossier_id = ANY($1::uuid[]) ORDER BY dossier_id, seq"
)
INSERT_DOSSIER = (
    "INSERT INTO issuance.dossiers (id, tracking_number, request_id, requester, requester_ref, client_id,"
    " authorisation_ref, legal_basis, id_number, subject, form, purpose, answers, fields, fee, working_days,"
    " deadline, received_at, status, status_changed_at, clean_record, holder_jwk, next_issue_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb, $15::jsonb, $16, $17, $18,"
    " $19, $20, $21, $22::jsonb, CASE WHEN $19 = 'APPROVED' THEN now() END)"
    " ON CONFLICT (requester_ref, request_id) DO NOTHING RETURNING id"
)
INSERT_EVENT = (
    "INSERT INTO issuance.dossier_events (dossier_id, seq, status, at, actor, reason, officer)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
UPDATE_STATUS = (
    "UPDATE issuance.dossiers SET status = $2, status_changed_at = $3,"
    " rejection_reason = CASE WHEN $2 = 'REJECTED' THEN $4 ELSE rejection_reason END,"
    " next_issue_at = CASE WHEN $2 = 'APPROVED' THEN now() ELSE next_issue_at END WHERE id = $1"
)
UNREACHABLE_MESSAGE = "the issuance database cannot be reached; try again"
ACCESS_LOG_MESSAGE = "the access log cannot be written now, so nothing was changed; try again"


class IssuanceDatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached now (UNAVAILABLE: the same request may succeed later)."""


class AccessLogUnavailable(Unavailable):
    """The audit row of a change could not be inserted, so the change was rolled back (UNAVAILABLE)."""


def reachable() -> contextlib.AbstractAsyncContextManager[None]:
    """A lost or refused PostgreSQL connection is ``Unavailable``; all else passes unchanged (``db.outages``)."""
    return outages.reachable(IssuanceDatabaseUnavailable, UNREACHABLE_MESSAGE)


async def _audited(connection: asyncpg.Connection, events: Sequence[AuditEvent]) -> None:
    """Insert the audit rows in the caller's transaction; whatever PostgreSQL says, the change must not stand."""
    try:
        await insert_events(connection, events)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        log.warning("issuance.audit_insert_failed", error=type(error).__name__)
        raise AccessLogUnavailable(ACCESS_LOG_MESSAGE) from None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _stored(row: asyncpg.Record, history: tuple[StoredEvent, ...]) -> StoredDossier:
    return StoredDossier(
        id=row["id"],
        tracking_number=row["tracking_number"],
        request_id=row["request_id"],
        requester=RequesterKind(row["requester"]),
        requester_ref=row["requester_ref"],
        client_id=row["client_id"],
        authorisation_ref=row["authorisation_ref"],
        legal_basis=row["legal_basis"],
        id_number=row["id_number"],
        subject=row["subject"],
        form=FormNo(row["form"]),
        purpose=row["purpose"],
        answers=_json(row["answers"]),
        fields=fields_from_json(_json(row["fields"])),
        fee=fee_from_json(_json(row["fee"])),
        working_days=row["working_days"],
        deadline=row["deadline"],
        received_at=row["received_at"],
        status=Status(row["status"]),
        status_changed_at=row["status_changed_at"],
        rejection_reason=row["rejection_reason"],
        clean_record=row["clean_record"],
        history=history,
        certificate_id=row["certificate_id"],
        credential_status=row["credential_status"],
        vault_document_id=row["vault_document_id"],
        fee_groups=tuple(str(g) for g in _json(row["fee"]).get("groups", ())),
    )


async def _with_history(
    connection: asyncpg.Connection | BoundedPool, rows: Sequence[asyncpg.Record]
) -> list[StoredDossier]:
    if not rows:
        return []
    events = await connection.fetch(SELECT_EVENTS, [row["id"] for row in rows])
    by_dossier: dict[uuid.UUID, list[StoredEvent]] = {}
    for e in events:
        by_dossier.setdefault(e["dossier_id"], []).append(
            StoredEvent(Status(e["status"]), e["at"], Actor(e["actor"]), e["reason"], e["officer"])
        )
    return [_stored(row, tuple(by_dossier.get(row["id"], ()))) for row in rows]


class PostgresDossierStore:
    """``issuance.store.DossierStore`` on PostgreSQL (see the module docstring). One-statement reads end at the
    caller's deadline (``db.bounded``); transactions keep the pool's timeout."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._reads = BoundedPool(pool)

    async def next_sequence(self) -> int:
        async with reachable():
            return int(await self._reads.fetchval("SELECT nextval('issuance.tracking_numbers')"))

    async def find(self, requester_ref: str, request_id: uuid.UUID) -> StoredDossier | None:
        async with reachable():
            row = await self._reads.fetchrow(SELECT_REQUEST, requester_ref, request_id)
            found = await _with_history(self._reads, [row] if row else [])
        return found[0] if found else None

    async def create(self, new: NewDossier, audit: list[AuditEvent]) -> tuple[StoredDossier, bool]:
        status = new.history[-1].status
        async with reachable():
            async with self._pool.acquire() as connection, connection.transaction():
                inserted = await connection.fetchval(
                    INSERT_DOSSIER,
                    new.id, new.tracking_number, new.request_id, new.requester.value, new.requester_ref,
                    new.client_id, new.authorisation_ref, new.legal_basis, new.id_number, new.subject,
                    int(new.form), new.purpose, json.dumps(dict(new.answers)), json.dumps(fields_json(new.fields)),
                    json.dumps(fee_json(new.fee, new.fee_groups)), new.working_days, new.deadline, new.received_at,
                    status.value, new.history[-1].at, new.clean_record,
                    json.dumps(dict(new.holder_jwk)) if new.holder_jwk is not None else None,
                )  # fmt: skip
                if inserted is not None:
                    await connection.executemany(
                        INSERT_EVENT,
                        [
                            (new.id, seq, e.status.value, e.at, e.actor.value, e.reason, e.officer)
                            for seq, e in enumerate(new.history)
                        ],
                    )
                    await _audited(connection, audit)
            found = await self.find(new.requester_ref, new.request_id)
        if found is None:  # pragma: no cover - the row was inserted or already there
            raise NotFound("the dossier vanished while it was opened")
        return found, inserted is not None

    async def get(self, dossier_id: uuid.UUID) -> StoredDossier | None:
        async with reachable():
            row = await self._reads.fetchrow(SELECT_ONE, dossier_id)
            found = await _with_history(self._reads, [row] if row else [])
        return found[0] if found else None

    async def mine(self, ref: str, limit: int, after: Cursor | None) -> list[StoredDossier]:
        at, last = after if after else (None, None)
        async with reachable():
            rows = await self._reads.fetch(SELECT_MINE, ref, at, last, limit)
            return await _with_history(self._reads, rows)

    async def by_status(
        self, status: Status, overdue_before: date | None, limit: int, after: Cursor | None
    ) -> list[StoredDossier]:
        at, last = after if after else (None, None)
        async with reachable():
            rows = await self._reads.fetch(SELECT_STATUS, status.value, overdue_before, at, last, limit)
            return await _with_history(self._reads, rows)

    async def transition(
        self,
        dossier_id: uuid.UUID,
        event: Event,
        actor: Actor,
        at: datetime,
        reason: str,
        officer: str,
        audit: TransitionAudit,
    ) -> StoredDossier:
        async with reachable():
            async with self._pool.acquire() as connection, connection.transaction():
                row = await connection.fetchrow(LOCK_ONE, dossier_id)
                if row is None:
                    raise NotFound("no such dossier")
                (stored,) = await _with_history(connection, [row])
                target = dossiers.transition(stored.status, event, actor, reason)
                when = max(at, stored.status_changed_at)
                await connection.execute(UPDATE_STATUS, dossier_id, target.value, when, reason.strip())
                await connection.execute(
                    INSERT_EVENT, dossier_id, len(stored.history), target.value, when, actor.value, reason.strip(),
                    officer,
                )  # fmt: skip
                await _audited(connection, [audit(stored, target)])
            found = await self.get(dossier_id)
        assert found is not None
        return found

    async def credential(self, dossier_id: uuid.UUID) -> StoredCredential | None:
        async with reachable():
            row = await self._reads.fetchrow(
                "SELECT status, credential, qr_text, credential_status, agency_pdf FROM issuance.dossiers"
                " WHERE id = $1",
                dossier_id,
            )
        if row is None:
            return None
        pdf = row["agency_pdf"]
        return StoredCredential(
            Status(row["status"]), row["credential"], row["qr_text"], row["credential_status"],
            bytes(pdf) if pdf is not None else None,
        )  # fmt: skip

    async def issuer_keys(self) -> list[IssuerKey]:
        async with reachable():
            rows = await self._reads.fetch(
                "SELECT kid, use, public_jwk, chain_pem FROM issuance.issuer_keys ORDER BY created_at, kid"
            )
        return [IssuerKey(r["kid"], r["use"], _json(r["public_jwk"]), r["chain_pem"]) for r in rows]
