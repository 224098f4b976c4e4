"""What the consent use cases need from storage, one small Protocol each; the PostgreSQL store implements them.

No implementation lives here. The rules stay in the domain: a store never decides a transition nor a fetch,
it runs ``consent.states.transition`` and ``consent.fetch_policy.decide`` inside its transaction, with the
consent's row locked, and writes what they return. Errors a store raises: ``NotFound`` for an unknown artefact
(also for one the caller may not know of), ``Unavailable`` when PostgreSQL cannot be reached, ``DataLoss`` when
a stored artefact no longer matches its signature.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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


class ConsentCreator(Protocol):
    async def create(
        self, artefact: ConsentArtefact, citizen_sub: str = "", approved: tuple[ConsentArtefact, str] | None = None
    ) -> None:
        """Insert a PENDING artefact with zero counters (``AlreadyExists`` if its id is taken); with ``approved``
        (a citizen's grant on their own initiative: the approved artefact and its JWS) insert it ACTIVE at once,
        in the same transaction."""


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
    ) -> Status:
        """In one transaction: lock the row, compute ``consent.states.transition(status, event, actor)``
        (its errors pass through unchanged), write the new status and the time of the change; for APPROVE, also
        store ``approved`` — the approved artefact and its JWS, which must be the stored artefact with
        ``approved_at`` set and nothing else changed. Returns the new status."""


class FetchCharger(Protocol):
    async def charge_fetch(self, artefact_id: uuid.UUID, request: FetchRequest, now: datetime) -> Decision:
        """In one transaction: lock the row (``SELECT … FOR UPDATE``), run ``consent.fetch_policy.decide`` on
        what is stored, and on ``Allowed`` write its counters before committing; a ``Denied`` writes nothing.
        Concurrent calls serialise on the row, so ``max_fetches`` and the frequency are never overspent."""


class ConsentExpiry(Protocol):
    async def expire_due(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Move up to ``limit`` PENDING, ACTIVE or PAUSED consents whose expiry is at or before ``now`` to
        EXPIRED (event EXPIRE, actor SYSTEM); the ids changed (each one an entry for the access log)."""


class NotificationUrls(Protocol):
    async def set_notification_url(self, client_id: str, url: str) -> None:
        """Register (or with ``url`` '' remove) the agency's notification URL; status changes of its consents
        are queued for it in the transaction of the change from then on."""

    async def notification_url(self, client_id: str) -> str:
        """The agency's notification URL, '' when none."""
