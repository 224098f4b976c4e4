"""PostgreSQL storage of consents (``consent.consents``, migration 0013): every Protocol of ``consent.storage``.

The store decides nothing: each change locks the consent's row (``SELECT … FOR UPDATE``), runs the domain's
rule on what is stored (``consent.states.transition``, ``consent.fetch_policy.decide``) and writes what it
returns in the same transaction, so concurrent calls serialise on the row (ReBIT's consent artefact keeps its
status and counters beside the signed terms the same way).

Whatever it reads it checks: the canonical JSON bytes must parse back to the same bytes, and an approved
artefact's JWS (``consent.artefact.verify``) must verify against the platform's public consent key named by
its ``kid`` (read from ``consent.signing_keys``, or given) and sign exactly the stored bytes; anything else is
``DataLoss`` (the row was altered outside the platform). Verified artefacts are cached by their bytes and
signature (an approved artefact never changes).

A status change of an agency's consent that registered a notification URL queues an outbox row
(``consent.notifications``) in the transaction of the change (the transactional outbox pattern): a
notification is sent if and only if the change committed (``consent.notifications.Sender``).

Every change inserts its ``audit.events`` row(s) in its own transaction (``audit.events.insert_events``,
the columns of ``PostgresAuditLog``): the change and its row commit together, or neither does, as the access
log feeds the public transparency log and must be complete. A refusal found under the row lock (the state
machine's, a denied fetch) commits its ``refused`` row in the transaction that found it, with nothing else
changed. A row PostgreSQL refuses (any error of the insert) rolls the whole transaction back and is
``AccessLogUnavailable`` (UNAVAILABLE: nothing changed, the same call may succeed later).

Used by three processes, each with its own pool and role: the consent service (everything), the vault
(``get``, ``charge_fetch``: its role may update the counters only) and the edge (``get``: read only).
PostgreSQL that cannot be reached is ``Unavailable``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from joserfc.jwk import ECKey

from audit.events import AuditEvent, insert_events
from consent import states
from consent.artefact import ConsentArtefact, canonical, from_json_value, verify
from consent.fetch_policy import Allowed, Counters, Decision, FetchRequest, decide
from consent.signing import ConsentKey, kid_of, public_key
from consent.states import Actor, Event, Status
from consent.storage import Cursor, Due, ExpiryAudit, FetchAudit, StoredConsent, TransitionAudit
from core import logs
from core.errors import AlreadyExists, DataLoss, DomainError, InvalidArgument, NotFound, Unavailable
from db import outages

COLUMNS = (
    "id, subject, citizen_sub, client_id, artefact, signature, status, status_changed_at, fetches, window_fetches,"
    " last_fetch"
)
# SQL built from these module-level column lists, never from input
SELECT_ONE = f"SELECT {COLUMNS} FROM consent.consents WHERE id = $1"  # noqa: S608
LOCK_ONE = SELECT_ONE + " FOR UPDATE"
SELECT_SUBJECT = (
    f"SELECT {COLUMNS} FROM consent.consents WHERE subject = $1 AND ($2::text IS NULL OR status = $2)"  # noqa: S608
    " AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid)) ORDER BY created_at DESC, id DESC LIMIT $5"
)
OPEN = tuple(sorted(source.value for source, event in states.TRANSITIONS if event is Event.EXPIRE))
# the open statuses spelled out, so that the partial index consents_due (migration 0013) serves the sweep
SELECT_DUE = (
    "SELECT id, subject, client_id, purpose, status, fetches FROM consent.consents"  # noqa: S608 - constants only
    f" WHERE status IN ({', '.join(repr(status) for status in OPEN)}) AND expiry <= $1"
    " ORDER BY expiry LIMIT $2 FOR UPDATE SKIP LOCKED"
)
SIGNED = frozenset({Status.ACTIVE, Status.PAUSED, Status.REVOKED})  # reachable only through APPROVE
CACHE_SIZE = 10_000
UNREACHABLE_MESSAGE = "the consent database cannot be reached; try again"
ACCESS_LOG_MESSAGE = "the access log cannot be written now, so nothing was changed; try again"
log = logs.get("consent.store")
QUEUE_NOTIFICATION = (
    "INSERT INTO consent.notifications (id, consent_id, client_id, status, fetches, created_at, next_attempt_at)"
    " SELECT $1, $2, client_id, $3, $4, $5, $5 FROM consent.notification_urls WHERE client_id = $6"
)


def _json(value: Any) -> dict[str, Any]:
    """A jsonb column's value (asyncpg hands it over as text unless a codec is set)."""
    return dict(json.loads(value) if isinstance(value, str) else value)


class ConsentDatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached now (UNAVAILABLE: the same request may succeed later)."""


class AccessLogUnavailable(Unavailable):
    """The audit row of a change could not be inserted, so the change was rolled back (UNAVAILABLE)."""


@contextlib.asynccontextmanager
async def logged() -> AsyncIterator[None]:
    """Map a failed audit insert to ``AccessLogUnavailable`` (the enclosing transaction then rolls back).

    Whatever PostgreSQL says (a lost connection, a refused privilege, a constraint or a trigger): the row is not
    in the log, so the change must not stand. Only the error's class is logged, never the row."""
    try:
        yield
    except DomainError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        log.warning("consent.audit_insert_failed", error=type(error).__name__)
        raise AccessLogUnavailable(ACCESS_LOG_MESSAGE) from None


async def _audited(connection: asyncpg.Connection, events: list[AuditEvent]) -> None:
    async with logged():
        await insert_events(connection, events)


def reachable() -> contextlib.AbstractAsyncContextManager[None]:
    """A lost or refused PostgreSQL connection is ``Unavailable``; all else passes unchanged (``db.outages``)."""
    return outages.reachable(ConsentDatabaseUnavailable, UNREACHABLE_MESSAGE)


@dataclass(frozen=True, slots=True)
class Agency:
    """A registered agency client as the consent service needs it (``oidc.clients``). ``cert_sha256``: the RFC 8705
    §3.1 ``x5t#S256`` of the client certificate last issued to it (``dinhdanh clients issue-cert``), None before
    any: the only certificate the agency may call with."""

    client_id: str
    name: str
    purposes: tuple[str, ...]
    disabled: bool
    cert_sha256: str | None = None


class PostgresAgencies:
    """Agencies' registrations (``oidc.clients`` of kind ``agency``: name, purposes, disabled, the registered
    certificate's thumbprint), read on every call: a reissued certificate retires the previous one at once."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, client_id: str) -> Agency | None:
        async with reachable():
            row = await self._pool.fetchrow(
                "SELECT client_id, name, purposes, disabled, cert_sha256 FROM oidc.clients"
                " WHERE client_id = $1 AND kind = 'agency'",
                client_id,
            )
        if row is None:
            return None
        return Agency(row["client_id"], row["name"], tuple(row["purposes"]), row["disabled"], row["cert_sha256"])

    async def names(self, client_ids: set[str]) -> dict[str, str]:
        if not client_ids:
            return {}
        async with reachable():
            rows = await self._pool.fetch(
                "SELECT client_id, name FROM oidc.clients WHERE client_id = ANY($1::text[])", sorted(client_ids)
            )
        return {row["client_id"]: row["name"] for row in rows}


class PostgresConsentStore:
    """``consent.storage``'s Protocols on PostgreSQL (see the module docstring).

    Stored JWSs are checked against the public consent keys of ``consent.signing_keys`` (only the consent
    service's role and the owner may write there), each read on first sight of its ``kid`` and kept (a key id
    is a thumbprint, so a ``kid`` never names another key); ``keys`` are known from the start. A rotated
    ``CONSENT_SIGNING`` seed thus leaves the artefacts signed under the previous key readable everywhere."""

    def __init__(self, pool: asyncpg.Pool, keys: Mapping[str, ECKey] | None = None) -> None:
        self._pool = pool
        self._keys: dict[str, ECKey] = dict(keys or {})
        self._verified: dict[tuple[bytes, str], ConsentArtefact] = {}

    # --- keys -------------------------------------------------------------------------------------------

    async def publish_key(self, key: ConsentKey) -> None:
        """Store the public half of the platform's consent key (the consent service, on start)."""
        async with reachable():
            await self._pool.execute(
                "INSERT INTO consent.signing_keys (kid, public_jwk) VALUES ($1, $2::jsonb) ON CONFLICT DO NOTHING",
                key.kid, json.dumps(key.public_jwk),
            )  # fmt: skip
        self._keys.setdefault(key.kid, key.public)

    async def public_keys(self) -> list[dict[str, Any]]:
        """Every stored public consent key (JWK), newest first."""
        async with reachable():
            rows = await self._pool.fetch("SELECT public_jwk FROM consent.signing_keys ORDER BY created_at DESC, kid")
        return [_json(row["public_jwk"]) for row in rows]

    async def _key(self, connection: asyncpg.Connection, kid: str) -> ECKey | None:
        if kid not in self._keys and kid:
            jwk = await connection.fetchval("SELECT public_jwk FROM consent.signing_keys WHERE kid = $1", kid)
            if jwk is not None:
                self._keys[kid] = public_key(_json(jwk))
        return self._keys.get(kid)

    # --- reading ----------------------------------------------------------------------------------------

    async def _stored(self, connection: asyncpg.Connection, row: asyncpg.Record) -> StoredConsent:
        raw, signature, status = bytes(row["artefact"]), row["signature"], Status(row["status"])
        artefact = self._verified.get((raw, signature))
        if artefact is None:
            artefact = await self._check(connection, row["id"], raw, signature, status)
            if len(self._verified) >= CACHE_SIZE:
                self._verified.clear()
            self._verified[raw, signature] = artefact
        elif status in SIGNED and not signature:
            raise DataLoss(f"consent {row['id']} is {status.value} but carries no signature")
        return StoredConsent(
            artefact=artefact,
            status=status,
            counters=Counters(row["fetches"], row["window_fetches"], row["last_fetch"]),
            signature=signature,
            citizen_sub=row["citizen_sub"],
            status_changed_at=row["status_changed_at"],
            canonical=raw,
        )

    async def _check(
        self, connection: asyncpg.Connection, consent_id: uuid.UUID, raw: bytes, signature: str, status: Status
    ) -> ConsentArtefact:
        try:
            artefact = from_json_value(json.loads(raw))
            if canonical(artefact) != raw:
                raise InvalidArgument("not in canonical form")
        except (InvalidArgument, ValueError, UnicodeDecodeError):
            raise DataLoss(f"the stored artefact of consent {consent_id} does not parse") from None
        if artefact.id != consent_id:
            raise DataLoss(f"the stored artefact of consent {consent_id} names another id")
        if not signature:
            if status in SIGNED or artefact.approved_at is not None:
                raise DataLoss(f"consent {consent_id} is approved but carries no signature")
            return artefact
        key = await self._key(connection, kid_of(signature))
        if key is None:
            raise DataLoss(f"consent {consent_id} is signed under a key the platform does not know")
        try:
            signed = verify(signature, key)
        except InvalidArgument:
            raise DataLoss(f"the signature of consent {consent_id} does not verify") from None
        if canonical(signed) != raw:
            raise DataLoss(f"the signature of consent {consent_id} signs another artefact")
        return artefact

    async def get(self, artefact_id: uuid.UUID) -> StoredConsent:
        """The artefact, its status and counters (``NotFound`` if none; ``DataLoss`` if it does not verify)."""
        async with reachable(), self._pool.acquire() as connection:
            row = await connection.fetchrow(SELECT_ONE, artefact_id)
            if row is None:
                raise NotFound("no such consent")
            return await self._stored(connection, row)

    async def list_for_subject(
        self, subject: str, status: Status | None, limit: int, after: Cursor | None = None
    ) -> list[StoredConsent]:
        """A citizen's consents, newest first (``created_at``, then ``id``), optionally of one status."""
        created, last = after if after else (None, None)
        async with reachable(), self._pool.acquire() as connection:
            rows = await connection.fetch(
                SELECT_SUBJECT, subject, status.value if status else None, created, last, limit,
            )  # fmt: skip
            return [await self._stored(connection, row) for row in rows]

    # --- writing ----------------------------------------------------------------------------------------

    async def create(
        self,
        artefact: ConsentArtefact,
        citizen_sub: str = "",
        approved: tuple[ConsentArtefact, str] | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        """Insert a PENDING artefact with zero counters, or with ``approved`` (a citizen's own grant) its approved
        form ACTIVE, notification queued, and ``audit``'s row, in one transaction (``AlreadyExists`` if the id is
        taken)."""
        status, stored, signature = Status.PENDING, artefact, ""
        if approved is not None:
            status = states.transition(Status.PENDING, Event.APPROVE, Actor.CITIZEN)
            stored, signature = approved
        raw = canonical(stored)
        async with reachable(), self._pool.acquire() as connection, connection.transaction():
            if approved is not None:
                await self._check_approval(connection, artefact, approved)
            try:
                await connection.execute(
                    "INSERT INTO consent.consents (id, subject, citizen_sub, client_id, purpose, artefact, signature,"
                    " status, status_changed_at, created_at, expiry) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
                    " $11)",
                    artefact.id, artefact.subject, citizen_sub, artefact.client_id, artefact.purpose, raw, signature,
                    status.value, stored.approved_at or artefact.created_at, artefact.created_at, artefact.expiry,
                )  # fmt: skip
            except asyncpg.UniqueViolationError:
                raise AlreadyExists("a consent with this id exists already") from None
            if status is not Status.PENDING:
                await self._queue(connection, artefact, status, 0, stored.approved_at or artefact.created_at)
            if audit is not None:
                await _audited(connection, [audit])

    async def _check_approval(
        self, connection: asyncpg.Connection, pending: ConsentArtefact, approved: tuple[ConsentArtefact, str]
    ) -> None:
        artefact, signature = approved
        if artefact.approved_at is None or pending.approved(artefact.approved_at) != artefact:
            raise InvalidArgument("the approved artefact must be the pending one with approved_at set")
        key = await self._key(connection, kid_of(signature))
        if key is None:
            raise InvalidArgument("the approval is signed under a key the platform does not know")
        if canonical(verify(signature, key)) != canonical(artefact):
            raise InvalidArgument("the approval's signature signs another artefact")

    async def _queue(
        self, connection: asyncpg.Connection, artefact: ConsentArtefact, status: Status, fetches: int, at: datetime
    ) -> None:
        await connection.execute(
            QUEUE_NOTIFICATION, uuid.uuid4(), artefact.id, status.value, fetches, at, artefact.client_id
        )

    async def transition(
        self,
        artefact_id: uuid.UUID,
        event: Event,
        actor: Actor,
        at: datetime,
        approved: tuple[ConsentArtefact, str] | None = None,
        audit: TransitionAudit | None = None,
    ) -> Status:
        """Lock the row, ``consent.states.transition`` (its errors pass unchanged), write the new status (for
        APPROVE also the approved artefact and its JWS), queue the agency's notification and insert
        ``audit(None)``; one transaction. A refusal of the state machine commits ``audit(message)`` alone (in
        the transaction that found it, under the lock), then raises."""
        if event is Event.APPROVE and approved is None:
            raise InvalidArgument("an approval stores the approved artefact and its signature")
        refusal: states.IllegalTransition | states.ActorNotAllowed | None = None
        async with reachable(), self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(LOCK_ONE, artefact_id)
            if row is None:
                raise NotFound("no such consent")
            stored = await self._stored(connection, row)
            try:
                target = states.transition(stored.status, event, actor)
            except (states.IllegalTransition, states.ActorNotAllowed) as error:
                refusal = error
                if audit is not None:
                    await _audited(connection, [audit(error.message)])
            else:
                await self._change(connection, stored, event, target, at, approved)
                if audit is not None:
                    await _audited(connection, [audit(None)])
        if refusal is not None:
            raise refusal
        return target

    async def _change(
        self,
        connection: asyncpg.Connection,
        stored: StoredConsent,
        event: Event,
        target: Status,
        at: datetime,
        approved: tuple[ConsentArtefact, str] | None,
    ) -> None:
        """Write the transition to ``target`` (for APPROVE also the approved artefact and its JWS) and queue
        the agency's notification, on the locked row."""
        artefact_id = stored.artefact.id
        if event is Event.APPROVE:
            assert approved is not None
            await self._check_approval(connection, stored.artefact, approved)
            await connection.execute(
                "UPDATE consent.consents SET artefact = $2, signature = $3, status = $4, status_changed_at = $5"
                " WHERE id = $1",
                artefact_id, canonical(approved[0]), approved[1], target.value, at,
            )  # fmt: skip
        else:
            await connection.execute(
                "UPDATE consent.consents SET status = $2, status_changed_at = $3 WHERE id = $1",
                artefact_id, target.value, at,
            )  # fmt: skip
        await self._queue(connection, stored.artefact, target, stored.counters.fetches, at)

    async def charge_fetch(
        self, artefact_id: uuid.UUID, request: FetchRequest, now: datetime, audit: FetchAudit | None = None
    ) -> Decision:
        """Lock the row, ``consent.fetch_policy.decide`` on what is stored, write the counters on ``Allowed``
        (a ``Denied`` writes none) and ``audit(decision)``'s row either way; one transaction, so concurrent
        fetches never overspend a grant and no fetch is charged without its row (nor a row kept for an uncharged
        one)."""
        async with reachable(), self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(LOCK_ONE, artefact_id)
            if row is None:
                raise NotFound("no such consent")
            stored = await self._stored(connection, row)
            decision = decide(stored.artefact, stored.status, stored.counters, request, now)
            if isinstance(decision, Allowed):
                after = decision.counters
                await connection.execute(
                    "UPDATE consent.consents SET fetches = $2, window_fetches = $3, last_fetch = $4 WHERE id = $1",
                    artefact_id, after.fetches, after.window_fetches, after.last_fetch,
                )  # fmt: skip
            event = audit(decision) if audit is not None else None
            if event is not None:
                await _audited(connection, [event])
            return decision

    async def expire_due(self, now: datetime, limit: int, audit: ExpiryAudit | None = None) -> list[uuid.UUID]:
        """Up to ``limit`` PENDING/ACTIVE/PAUSED consents with ``expiry <= now`` → EXPIRED (EXPIRE by SYSTEM),
        notifications queued, one ``audit(due)`` row each, in one transaction; rows another replica holds are
        skipped (``SKIP LOCKED``). The ids changed."""
        async with reachable(), self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(SELECT_DUE, now, limit)
            changed: list[tuple[uuid.UUID, str, Status, int]] = []
            for row in rows:
                target = states.transition(Status(row["status"]), Event.EXPIRE, Actor.SYSTEM)
                changed.append((row["id"], row["client_id"], target, row["fetches"]))
            if not changed:
                return []
            await connection.execute(
                "UPDATE consent.consents c SET status = u.status, status_changed_at = $3"
                " FROM unnest($1::uuid[], $2::text[]) AS u(id, status) WHERE c.id = u.id",
                [c[0] for c in changed], [c[2].value for c in changed], now,
            )  # fmt: skip
            await connection.execute(
                "INSERT INTO consent.notifications (id, consent_id, client_id, status, fetches, created_at,"
                " next_attempt_at) SELECT n.jti, n.consent_id, n.client_id, n.status, n.fetches, $6, $6"
                " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int[])"
                " AS n(jti, consent_id, client_id, status, fetches)"
                " JOIN consent.notification_urls u ON u.client_id = n.client_id",
                [uuid.uuid4() for _ in changed], [c[0] for c in changed], [c[1] for c in changed],
                [c[2].value for c in changed], [c[3] for c in changed], now,
            )  # fmt: skip
            if audit is not None:
                await _audited(
                    connection, [audit(Due(r["id"], r["subject"], r["client_id"], r["purpose"])) for r in rows]
                )
            return [c[0] for c in changed]

    # --- notification URLs ------------------------------------------------------------------------------

    async def set_notification_url(self, client_id: str, url: str) -> None:
        async with reachable():
            if url:
                await self._pool.execute(
                    "INSERT INTO consent.notification_urls (client_id, url) VALUES ($1, $2)"
                    " ON CONFLICT (client_id) DO UPDATE SET url = excluded.url, updated_at = now()",
                    client_id, url,
                )  # fmt: skip
            else:
                await self._pool.execute("DELETE FROM consent.notification_urls WHERE client_id = $1", client_id)

    async def notification_url(self, client_id: str) -> str:
        async with reachable():
            url: Any = await self._pool.fetchval(
                "SELECT url FROM consent.notification_urls WHERE client_id = $1", client_id
            )
        return str(url or "")
