"""What the consent use cases need from storage, one small Protocol each; the PostgreSQL store implements them.

No implementation lives here. The rules stay in the domain: a store never decides a transition nor a fetch,
it runs ``consent.states.transition`` and ``consent.fetch_policy.decide`` inside its transaction, with the
consent's row locked, and writes what they return. Errors a store raises: ``NotFound`` for an unknown artefact
(also for one the caller may not know of), ``Unavailable`` when PostgreSQL cannot be reached, ``DataLoss`` when
a stored artefact no longer matches its signature.

Every writing method takes the ``audit.events`` row(s) of its change and inserts them in the change's own
transaction (``audit.events.insert_events``): a change and its row commit together, or neither does, so the
access log that feeds the public transparency log is complete (issue 10, item 6). A row that cannot be
inserted rolls the change back and is ``Unavailable`` (``consent.pg_store.AccessLogUnavailable``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from audit.events import AuditEvent
from consent.artefact import ConsentArtefact
from consent.fetch_policy import Counters, Decision, FetchRequest
from consent.states import Actor, Event, Status


@dataclass(frozen=True, slots=True)
class StoredConsent:
    """An artefact with what lives beside it: its status, its counters and, once approved, the platform's JWS."""

    artefact: ConsentArtefact
    status: Status
    counters: Counters
    signature: str = ""  # the compact JWS of the approved artefact (consent.artefact.sign)
    citizen_sub: str = ""  # the citizen's opaque OpenID Connect ``sub`` (identity.oidc.subjects), for the vault
    status_changed_at: datetime | None = None
    canonical: bytes = b""  # the stored canonical JSON bytes of the artefact (what ``signature`` signs)


Cursor = tuple[datetime, uuid.UUID]  # (created_at, id) of the last consent of a page: the next page starts after it

TransitionAudit = Callable[[str | None], AuditEvent]
"""The audit row of a transition: called with ``None`` for its success, or with the domain's message when the
state machine refuses it under the row lock (the ``refused`` row)."""

FetchAudit = Callable[[Decision], AuditEvent | None]
"""The audit row of a charged fetch for its decision (``Allowed``: success; ``Denied``: refused); ``None``
writes none."""


@dataclass(frozen=True, slots=True)
class Due:
    """A consent the expiry sweep moves to EXPIRED, as its audit row names it (the row's plain columns)."""

    consent_id: uuid.UUID
    subject: str  # the citizen's audit pseudonym (the artefact's subject)
    client_id: str
    purpose: str


ExpiryAudit = Callable[[Due], AuditEvent]


class ConsentCreator(Protocol):
    async def create(
        self,
        artefact: ConsentArtefact,
        citizen_sub: str = "",
        approved: tuple[ConsentArtefact, str] | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        """Insert a PENDING artefact with zero counters (``AlreadyExists`` if its id is taken); with ``approved``
        (a citizen's grant on their own initiative: the approved artefact and its JWS) insert it ACTIVE at once;
        ``audit`` (the request's or the grant's row) in the same transaction."""


class ConsentReader(Protocol):
    async def get(self, artefact_id: uuid.UUID) -> StoredConsent:
        """The artefact, its status and counters (``NotFound`` if none)."""

    async def list_for_subject(
        self, subject: str, status: Status | None, limit: int, after: Cursor | None = None
    ) -> list[StoredConsent]:
        """A citizen's consents, newest first (the portal's pages), optionally of one status, starting after
        ``after`` (keyset paging)."""


class ConsentTransitions(Protocol):
    async def transition(
        self,
        artefact_id: uuid.UUID,
        event: Event,
        actor: Actor,
        at: datetime,
        approved: tuple[ConsentArtefact, str] | None = None,
        audit: TransitionAudit | None = None,
    ) -> Status:
        """In one transaction: lock the row, compute ``consent.states.transition(status, event, actor)``
        (its errors pass through unchanged), write the new status, the time of the change and ``audit(None)``;
        for APPROVE, also store ``approved`` — the approved artefact and its JWS, which must be the stored
        artefact with ``approved_at`` set and nothing else changed. Returns the new status. A refusal by the
        state machine commits ``audit(message)`` alone (nothing else changes), then raises."""


class FetchCharger(Protocol):
    async def charge_fetch(
        self, artefact_id: uuid.UUID, request: FetchRequest, now: datetime, audit: FetchAudit | None = None
    ) -> Decision:
        """In one transaction: lock the row (``SELECT … FOR UPDATE``), run ``consent.fetch_policy.decide`` on
        what is stored, and on ``Allowed`` write its counters before committing; a ``Denied`` writes no counter.
        ``audit(decision)``'s row is inserted in the same transaction either way. Concurrent calls serialise on
        the row, so ``max_fetches`` and the frequency are never overspent."""


class ConsentExpiry(Protocol):
    async def expire_due(self, now: datetime, limit: int, audit: ExpiryAudit | None = None) -> list[uuid.UUID]:
        """Move up to ``limit`` PENDING, ACTIVE or PAUSED consents whose expiry is at or before ``now`` to
        EXPIRED (event EXPIRE, actor SYSTEM), with one ``audit(due)`` row each, in one transaction; the ids
        changed."""


class NotificationUrls(Protocol):
    async def set_notification_url(self, client_id: str, url: str) -> None:
        """Register (or with ``url`` '' remove) the agency's notification URL; status changes of its consents
        are queued for it in the transaction of the change from then on."""

    async def notification_url(self, client_id: str) -> str:
        """The agency's notification URL, '' when none."""
