"""PostgreSQL storage of the issuing worker (``issuance.issuing``) on migration 0018's ``issuance.dossiers``.

The worker's rows are APPROVED dossiers whose ``next_issue_at`` is due. Several replicas share them safely:

- **claim** (one statement, its own transaction): ``SELECT … FOR NO KEY UPDATE SKIP LOCKED`` picks due rows no
  other claimer holds, and the same statement gives each its ``certificate_id`` (a UUID) and ``status_index``
  (``nextval('issuance.status_indexes')``) the first time only (``COALESCE``: a retried issue keeps both, so the
  vault's delivery, idempotent per ``issuer_document_id = certificate_id``, returns the document already
  delivered), and moves ``next_issue_at`` a **lease** ahead: while one worker builds and delivers, no other
  claims the row; if that worker dies, the row is due again when the lease runs out and the issue is done again;
- **settle** (one transaction): the row locked ``FOR UPDATE``; a row already ISSUED (a slower twin that outlived
  its lease) is left as it is; otherwise ``issuance.dossiers.transition(APPROVED, ISSUE, SYSTEM)`` and the row
  becomes ISSUED with its credential, QR text, vault document id (or the agency's PDF), ``issued_at`` and
  ``credential_status`` VALID, with its ``issuance.dossier_events`` row and its ``audit.events`` row;
- **failed**: ``issue_attempts + 1``, ``next_issue_at`` after the back-off the worker chose, ``issue_error`` (a
  sentence without secrets).

It also writes the issuer's public keys (``issuance.issuer_keys``: the credential key's JWK with its ``kid``, use
``credential``; the document-signing key's JWK with its certificate chain, use ``document``) on start.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from audit.events import AuditEvent, insert_events
from issuance import dossiers
from issuance.dossiers import Actor, Event, Status
from issuance.forms import RequesterKind
from issuance.pg_store import PostgresDossierStore, reachable
from issuance.store import StoredDossier

CLAIM = (
    "WITH due AS ("
    " SELECT id FROM issuance.dossiers WHERE status = 'APPROVED' AND next_issue_at <= now()"
    " ORDER BY next_issue_at, id LIMIT $1 FOR NO KEY UPDATE SKIP LOCKED)"
    " UPDATE issuance.dossiers AS d SET"
    " certificate_id = COALESCE(d.certificate_id, gen_random_uuid()::text),"
    " status_index = COALESCE(d.status_index, nextval('issuance.status_indexes')::integer),"
    " next_issue_at = now() + make_interval(secs => $2)"
    " FROM due WHERE d.id = due.id"
    " RETURNING d.id, d.certificate_id, d.status_index, d.holder_jwk, d.requester, d.id_number, d.issue_attempts"
)
LOCK = "SELECT status, status_changed_at, certificate_id FROM issuance.dossiers WHERE id = $1 FOR UPDATE"
EVENTS = "SELECT count(*) FROM issuance.dossier_events WHERE dossier_id = $1"
ISSUE = (
    "UPDATE issuance.dossiers SET status = 'ISSUED', status_changed_at = $2, credential = $3, qr_text = $4,"
    " vault_document_id = $5, agency_pdf = $6, issued_at = $2, credential_status = 'VALID', next_issue_at = NULL,"
    " issue_error = '' WHERE id = $1"
)
EVENT = (
    "INSERT INTO issuance.dossier_events (dossier_id, seq, status, at, actor, reason, officer)"
    " VALUES ($1, $2, $3, $4, $5, '', '')"
)
FAILED = (
    "UPDATE issuance.dossiers SET issue_attempts = issue_attempts + 1, issue_error = $3,"
    " next_issue_at = now() + make_interval(secs => $2) WHERE id = $1 AND status = 'APPROVED'"
)
PUBLISH_KEY = (
    "INSERT INTO issuance.issuer_keys (kid, use, public_jwk, chain_pem) VALUES ($1, $2, $3::jsonb, $4)"
    " ON CONFLICT (kid) DO UPDATE SET use = EXCLUDED.use, public_jwk = EXCLUDED.public_jwk,"
    " chain_pem = EXCLUDED.chain_pem"
    " WHERE (issuance.issuer_keys.use, issuance.issuer_keys.public_jwk, issuance.issuer_keys.chain_pem)"
    " IS DISTINCT FROM (EXCLUDED.use, EXCLUDED.public_jwk, EXCLUDED.chain_pem)"
)
MAX_ERROR = 500
AGENCY_REQUESTERS = frozenset({RequesterKind.AGENCY, RequesterKind.PROCEDURAL_AUTHORITY})


@dataclass(frozen=True, slots=True)
class Claim:
    """A dossier this worker holds for one lease: what the claim assigned and what the issue needs first."""

    dossier_id: uuid.UUID
    certificate_id: str
    status_index: int
    holder_jwk: Mapping[str, Any] | None
    requester: RequesterKind
    id_number: str
    attempts: int  # failed attempts before this one

    @property
    def for_agency(self) -> bool:
        """An agency's or procedural authority's request: the PDF is kept for it, not delivered into a vault."""
        return self.requester in AGENCY_REQUESTERS


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an issue produced, to be stored with the ISSUED status."""

    credential: str
    qr_text: str
    vault_document_id: str | None
    agency_pdf: bytes | None
    at: datetime


@dataclass(frozen=True, slots=True)
class PublishedKey:
    kid: str
    use: str  # 'credential' or 'document'
    public_jwk: Mapping[str, Any]
    chain_pem: str = ""


class IssuingStore(Protocol):
    async def claim(self, limit: int, lease_seconds: float) -> list[Claim]:
        """Up to ``limit`` due APPROVED dossiers, held for ``lease_seconds`` (see the module docstring)."""

    async def dossier(self, dossier_id: uuid.UUID) -> StoredDossier | None: ...

    async def settle(self, claim: Claim, outcome: Outcome, audit: AuditEvent) -> bool:
        """ISSUED with ``outcome`` and its event and audit rows; False when it was ISSUED already."""

    async def failed(self, claim: Claim, error: str, retry_in: float) -> None: ...

    async def publish_keys(self, keys: Sequence[PublishedKey]) -> None: ...


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class PostgresIssuingStore:
    """:class:`IssuingStore` on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._dossiers = PostgresDossierStore(pool)

    async def claim(self, limit: int, lease_seconds: float) -> list[Claim]:
        async with reachable():
            rows = await self._pool.fetch(CLAIM, limit, float(lease_seconds))
        return [
            Claim(
                dossier_id=row["id"],
                certificate_id=row["certificate_id"],
                status_index=row["status_index"],
                holder_jwk=_json(row["holder_jwk"]) if row["holder_jwk"] is not None else None,
                requester=RequesterKind(row["requester"]),
                id_number=row["id_number"],
                attempts=row["issue_attempts"],
            )
            for row in rows
        ]

    async def dossier(self, dossier_id: uuid.UUID) -> StoredDossier | None:
        return await self._dossiers.get(dossier_id)

    async def settle(self, claim: Claim, outcome: Outcome, audit: AuditEvent) -> bool:
        async with reachable(), self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(LOCK, claim.dossier_id)
            if row is None or row["status"] == Status.ISSUED.value:
                return False
            if row["certificate_id"] != claim.certificate_id:  # pragma: no cover - assigned once by the claim
                return False
            target = dossiers.transition(Status(row["status"]), Event.ISSUE, Actor.SYSTEM)
            at = max(outcome.at, row["status_changed_at"])
            seq = await connection.fetchval(EVENTS, claim.dossier_id)
            await connection.execute(
                ISSUE, claim.dossier_id, at, outcome.credential, outcome.qr_text, outcome.vault_document_id,
                outcome.agency_pdf,
            )  # fmt: skip
            await connection.execute(EVENT, claim.dossier_id, seq, target.value, at, Actor.SYSTEM.value)
            await insert_events(connection, [audit])
        return True

    async def failed(self, claim: Claim, error: str, retry_in: float) -> None:
        async with reachable():
            await self._pool.execute(FAILED, claim.dossier_id, float(retry_in), error[:MAX_ERROR])

    async def publish_keys(self, keys: Sequence[PublishedKey]) -> None:
        async with reachable(), self._pool.acquire() as connection, connection.transaction():
            for key in keys:
                await connection.execute(PUBLISH_KEY, key.kid, key.use, json.dumps(dict(key.public_jwk)), key.chain_pem)


__all__ = ["Claim", "IssuingStore", "Outcome", "PostgresIssuingStore", "PublishedKey"]
