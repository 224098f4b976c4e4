"""PostgreSQL storage of certificate statuses and their signed Token Status Lists (migration 0018).

``PostgresStatusStore`` implements ``issuance.revocation.StatusStore`` for the issuance service (role
``dinhdanh_issuance``):

- ``change``: one transaction — ``SELECT … FOR UPDATE`` of the dossier, ``revocation.next_status`` on what is
  stored, ``UPDATE issuance.dossiers SET credential_status``, its ``audit.events`` row, then the list rebuilt.
  A refusal found under the lock (not ISSUED, already revoked, …) commits only its ``refused`` audit row, then
  raises; an audit row PostgreSQL refuses rolls everything back (UNAVAILABLE: nothing changed).
- ``rebuild``: under a transaction-scoped advisory lock per list (``pg_advisory_xact_lock``, so the first build
  of an absent list serialises too), the list's entries are read afresh — READ COMMITTED gives each statement a
  new snapshot, so every change committed before the lock was granted is in it — signed, and upserted with
  ``version`` incremented. Each change rebuilds after writing its own row and before committing, so of two
  concurrent changes the second to take the lock sees the first's committed row: no entry is lost.
  The size comes from the highest index handed out: the dossiers' ``status_index`` and the sequence
  ``issuance.status_indexes`` (an index taken but not yet written is covered too).

``PostgresPublications`` reads what the edge publishes (role ``dinhdanh_edge``: SELECT on
``issuance.status_lists`` and ``issuance.issuer_keys``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from audit.events import AuditEvent, insert_events
from core import logs
from core.errors import DomainError, NotFound, Unavailable
from core.keys import purposes
from core.settings import Settings, key_provider
from issuance import revocation
from issuance.issuer_keys import SigningKey
from issuance.revocation import Change, CredentialStatus, PublishedList, StatusListSigner

LOCK_CLASS = 0x1C5  # the advisory lock space of issuance.status_lists (the second key is the list id)
LOCK_DOSSIER = (
    "SELECT status, credential_status, subject, certificate_id, status_index FROM issuance.dossiers"
    " WHERE id = $1 FOR UPDATE"
)
UPDATE_STATUS = "UPDATE issuance.dossiers SET credential_status = $2 WHERE id = $1"
SELECT_LIST = "SELECT list_id, token, size, version, built_at FROM issuance.status_lists WHERE list_id = $1"
HIGHEST_INDEX = (
    "SELECT GREATEST((SELECT max(status_index) FROM issuance.dossiers),"
    " (SELECT CASE WHEN is_called THEN last_value END FROM issuance.status_indexes))"
)
NOT_VALID = (
    "SELECT status_index, credential_status FROM issuance.dossiers"
    " WHERE credential_status IN ('REVOKED', 'SUSPENDED') AND status_index IS NOT NULL"
)
UPSERT_LIST = (
    "INSERT INTO issuance.status_lists (list_id, token, size, version, built_at) VALUES ($1, $2, $3, 1, $4)"
    " ON CONFLICT (list_id) DO UPDATE SET token = EXCLUDED.token, size = EXCLUDED.size,"
    " version = issuance.status_lists.version + 1, built_at = EXCLUDED.built_at"
    " RETURNING list_id, token, size, version, built_at"
)
SELECT_KEYS = "SELECT kid, public_jwk, chain_pem FROM issuance.issuer_keys WHERE use = $1 ORDER BY created_at, kid"
UNREACHABLE_MESSAGE = "the issuance database cannot be reached; try again"
ACCESS_LOG_MESSAGE = "the access log cannot be written now, so nothing was changed; try again"
log = logs.get("issuance.status_store")


class StatusDatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached now (UNAVAILABLE)."""


class AccessLogUnavailable(Unavailable):
    """The audit row of a change could not be inserted, so the change was rolled back (UNAVAILABLE)."""


@contextlib.asynccontextmanager
async def reachable() -> AsyncIterator[None]:
    """A lost or refused connection is ``Unavailable``; domain errors pass unchanged."""
    try:
        yield
    except DomainError:
        raise
    except (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, OSError) as error:
        log.warning("issuance.status_db_unreachable", error=type(error).__name__)
        raise StatusDatabaseUnavailable(UNREACHABLE_MESSAGE) from None


async def _audited(connection: asyncpg.Connection, event: AuditEvent) -> None:
    try:
        await insert_events(connection, [event])
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        log.warning("issuance.audit_insert_failed", error=type(error).__name__)
        raise AccessLogUnavailable(ACCESS_LOG_MESSAGE) from None


def _jsonb(value: Any) -> dict[str, Any]:
    """A jsonb column's value (asyncpg hands it over as text unless a codec is set)."""
    return dict(json.loads(value) if isinstance(value, str) else value)


def _published(row: asyncpg.Record) -> PublishedList:
    return PublishedList(row["list_id"], row["token"], row["size"], row["version"], row["built_at"])


def _event(change: Change, row: asyncpg.Record, target: CredentialStatus | None, refusal: str = "") -> AuditEvent:
    detail: dict[str, Any] = {
        "dossier_id": str(change.dossier_id),
        "certificate_id": row["certificate_id"] or "",
        "officer": change.officer,
        "reason": change.reason,
        "from": row["credential_status"] or "",
    }
    if row["status_index"] is not None:
        detail["status_index"] = row["status_index"]
    if target is not None:
        detail["to"] = target.value
    if refusal:
        detail["refusal"] = refusal
    outcome = "refused" if refusal else "success"
    return AuditEvent(f"agency:{change.officer}", revocation.ACTIONS[change.event], outcome, row["subject"], None,
                      detail)  # fmt: skip


class PostgresStatusStore:
    """``revocation.StatusStore`` on PostgreSQL (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, signer: StatusListSigner) -> None:
        self._pool = pool
        self._signer = signer

    @property
    def signer(self) -> StatusListSigner:
        return self._signer

    async def change(self, change: Change) -> CredentialStatus:
        refusal: DomainError | None = None
        async with reachable(), self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(LOCK_DOSSIER, change.dossier_id)
            if row is None:
                raise NotFound("no such dossier")
            current = CredentialStatus(row["credential_status"]) if row["credential_status"] else None
            try:
                target = revocation.next_status(row["status"], current, change.event)
            except DomainError as error:
                refusal = error
                await _audited(connection, _event(change, row, None, error.message))
            else:
                await connection.execute(UPDATE_STATUS, change.dossier_id, target.value)
                await _audited(connection, _event(change, row, target))
                await self._rebuild(connection, change.at, revocation.LIST_ID)
        if refusal is not None:
            raise refusal
        return target

    async def rebuild(self, at: datetime, list_id: int = revocation.LIST_ID, *, older_than: datetime | None = None,
                      covering: int | None = None) -> PublishedList | None:  # fmt: skip
        async with reachable(), self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, list_id)
            row = await connection.fetchrow(SELECT_LIST, list_id)
            if row is not None:
                stale = older_than is not None and row["built_at"] < older_than
                short = covering is not None and covering >= row["size"]
                if (older_than is not None or covering is not None) and not (stale or short):
                    return _published(row)
            return await self._rebuild(connection, at, list_id, locked=True, covering=covering)

    async def _rebuild(self, connection: asyncpg.Connection, at: datetime, list_id: int, locked: bool = False,
                       covering: int | None = None) -> PublishedList:  # fmt: skip
        if not locked:
            await connection.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, list_id)
        highest = await connection.fetchval(HIGHEST_INDEX)
        size = revocation.list_size(max(-1 if highest is None else highest, -1 if covering is None else covering))
        entries = {
            record["status_index"]: CredentialStatus(record["credential_status"])
            for record in await connection.fetch(NOT_VALID)
            if record["status_index"] < size
        }
        token = self._signer.sign(entries, size, at, list_id)
        row = await connection.fetchrow(UPSERT_LIST, list_id, token, size, at)
        return _published(row)

    async def published(self, list_id: int = revocation.LIST_ID) -> PublishedList | None:
        async with reachable():
            row = await self._pool.fetchrow(SELECT_LIST, list_id)
        return None if row is None else _published(row)


def status_store(pool: asyncpg.Pool, settings: Settings) -> PostgresStatusStore:
    """The store of the issuance process: its ``ISSUANCE_SIGNING`` key and the edge's URL as issuer."""
    key = SigningKey.from_signer(key_provider(settings).signer(purposes.ISSUANCE_SIGNING))  # the seed's, or a token's
    return PostgresStatusStore(pool, StatusListSigner(key, settings.issuer))


@dataclass(frozen=True, slots=True)
class IssuerKey:
    kid: str
    public_jwk: dict[str, Any]
    chain_pem: str


class PostgresPublications:
    """What the edge publishes, read with its own role: status lists and the issuer's keys."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def status_list(self, list_id: int) -> PublishedList | None:
        async with reachable():
            row = await self._pool.fetchrow(SELECT_LIST, list_id)
        return None if row is None else _published(row)

    async def issuer_keys(self, use: str) -> list[IssuerKey]:
        """The rows of ``use`` ('credential': the issuer's JWKs; 'document': the PAdES signer with its chain)."""
        async with reachable():
            rows = await self._pool.fetch(SELECT_KEYS, use)
        return [IssuerKey(row["kid"], _jsonb(row["public_jwk"]), row["chain_pem"]) for row in rows]
