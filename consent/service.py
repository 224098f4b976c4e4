"""The consent use cases (issue 10, item 1): agencies request, citizens grant and decide, the system expires.

After ReBIT's Account Aggregator consent flow: an agency (a registered, enabled client of kind ``agency``)
asks a citizen, named by ID number, for consent to documents for a purpose it is registered for; the
artefact is PENDING until the citizen approves (the platform signs the approved artefact, ES256 JWS over its
canonical JSON) or rejects it. A citizen may also grant on their own initiative (ACTIVE at once), and pause,
resume or revoke; an agency may give a grant up (revoke). The state machine is ``consent.states``; the store
applies each transition under a row lock (``consent.pg_store``).

An agency's request is not checked against the population registry: an ID number of the right form that
belongs to nobody yields a consent no citizen will ever see nor approve (it expires), and the agency learns
nothing about whether the number exists.

Who may see a consent: its citizen (by the pseudonymous subject of their token's ``sub``) and its agency;
anyone else gets NOT_FOUND, exactly as for an unknown id.

Audit (``audit.events``, a public transparency log feeds on it, so no personal data): every transition
appends ``{actor, action: consent.<event>, outcome, subject: the citizen's pseudonym, detail: {consent_id,
client_id, purpose}}`` with actor ``citizen``, ``agency:<client_id>`` or ``system``; a refused transition
(illegal in the current status, or an actor who may not cause it) appends outcome ``refused`` with the
domain's ``reason`` added to the detail.

Every change and its row commit in one transaction, or neither does (the store inserts the row the service
hands it: ``create``'s ``audit``, ``transition``'s and ``expire_due``'s factories), so the log is complete: when
the row cannot be written the change is rolled back and the caller gets UNAVAILABLE (``AccessLogUnavailable``).
A refusal the service finds before the store (the state machine on the status it read, an expired approval)
appends its ``refused`` row on its own (one short statement, nothing else changes); one the store finds under
the row lock (a concurrent change came first) is committed by the store in the transaction that found it.
Either way a refusal whose row cannot be written is UNAVAILABLE, not the refusal.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from audit.events import AuditEvent, AuditLog, Pseudonymizer
from consent import artefact as artefacts
from consent import states
from consent.artefact import ConsentArtefact, Frequency, FrequencyUnit
from consent.pg_store import Agency, logged
from consent.purposes import purpose as catalog_purpose
from consent.signing import ConsentKey
from consent.states import Actor, Event, Status
from consent.storage import (
    ConsentCreator,
    ConsentExpiry,
    ConsentReader,
    ConsentTransitions,
    Cursor,
    Due,
    NotificationUrls,
    StoredConsent,
)
from core import logs, metrics
from core.callers import current_caller
from core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from identity.oidc.subjects import Subjects
from registry.idnumber import InvalidIdNumber
from registry.idnumber import parse as parse_id_number
from vault.documents import DocumentType

log = logs.get("consent")

DEFAULT_PAGE = 20
MAX_PAGE = 100
START_SLACK = timedelta(minutes=5)  # a start this much in the past (a caller's clock) counts as "now"
EXPIRY_BATCH = 100
ACTIONS = {
    Event.APPROVE: "consent.approve",
    Event.REJECT: "consent.reject",
    Event.PAUSE: "consent.pause",
    Event.RESUME: "consent.resume",
    Event.REVOKE: "consent.revoke",
    Event.EXPIRE: "consent.expire",
}
REQUEST, GRANT = "consent.request", "consent.grant"
DECISIONS = {  # dinhdanh_consent_decisions_total's label of each transition that took place (core.metrics)
    Event.APPROVE: "granted",
    Event.REJECT: "denied",
    Event.PAUSE: "paused",
    Event.RESUME: "resumed",
    Event.REVOKE: "revoked",
    Event.EXPIRE: "expired",
}


class ConsentStore(ConsentCreator, ConsentReader, ConsentTransitions, ConsentExpiry, NotificationUrls, Protocol):
    """Everything the consent service needs of its store (``consent.pg_store.PostgresConsentStore``)."""

    async def public_keys(self) -> list[dict[str, Any]]:
        """The public JWKs of every consent key the platform signed with, newest first."""


class Agencies(Protocol):
    async def get(self, client_id: str) -> Agency | None:
        """The registered agency, ``None`` when ``client_id`` is no agency."""

    async def names(self, client_ids: set[str]) -> dict[str, str]:
        """The registered names of these clients."""


@dataclass(frozen=True, slots=True)
class Terms:
    """What an agency asks or a citizen grants (``start`` ``None``: now; ``frequency`` ``None``: up to
    ``max_fetches`` a day, within the catalog's limit)."""

    purpose: str
    documents: tuple[uuid.UUID, ...]
    document_types: tuple[DocumentType, ...]
    start: datetime | None
    expiry: datetime | None
    data_life: timedelta
    max_fetches: int
    frequency: Frequency | None


@dataclass(frozen=True, slots=True)
class Citizen:
    """The calling citizen: the pseudonymous subject (audit namespace) and the opaque OIDC ``sub``."""

    subject: str
    sub: str


@dataclass(frozen=True, slots=True)
class Record:
    """A consent with its agency's registered name (for the citizen's pages)."""

    consent: StoredConsent
    agency_name: str


@dataclass(frozen=True, slots=True)
class SignedStatus:
    status: Status
    fetches: int
    jws: str


def encode_cursor(cursor: Cursor) -> str:
    created, last = cursor
    return base64.urlsafe_b64encode(f"{created.isoformat()}|{last}".encode()).rstrip(b"=").decode()


def decode_cursor(token: str) -> Cursor:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, last = text.split("|")
        instant = datetime.fromisoformat(created)
        if instant.tzinfo is None:
            raise ValueError("naive")
        return instant, uuid.UUID(last)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidArgument("page_token is not one this service issued") from None


class ConsentService:
    def __init__(
        self,
        store: ConsentStore,
        agencies: Agencies,
        key: ConsentKey,
        audit: AuditLog,
        subjects: Subjects,
        pseudonyms: Pseudonymizer,
        issuer: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._agencies = agencies
        self._key = key
        self._audit = audit
        self._subjects = subjects
        self._pseudonyms = pseudonyms
        self._issuer = issuer
        self._clock = clock
        metrics.consent_decisions()  # every decision's series from the start, at 0

    # --- who ---------------------------------------------------------------------------------------------

    def citizen(self, sub: str, sector: str | None = None) -> Citizen:
        """The citizen behind a token's opaque ``sub`` (UNAUTHENTICATED when it is none of this platform's), a
        pairwise one with its ``sector`` (OIDC Core §8.1); the artefact keeps the internal subject."""
        id_number = self._subjects.id_number(sub, sector)
        if id_number is None:
            raise Unauthenticated("the token's subject is not a citizen of this platform")
        return Citizen(self._pseudonyms.ref(id_number), self._subjects.subject(id_number))

    async def agency(self, client_id: str) -> Agency:
        """The calling agency: a registered, enabled client of kind ``agency`` (else PERMISSION_DENIED), calling
        with the certificate registered for it (RFC 8705 §2.1.2: the caller's ``x5t#S256`` equals the recorded
        ``cert_sha256``; an earlier certificate, from the same CA and naming the same client, is UNAUTHENTICATED)."""
        agency = await self._agencies.get(client_id)
        if agency is None:
            raise PermissionDenied("this certificate's client is not a registered, enabled agency")
        presented = current_caller().cert_sha256
        if not agency.cert_sha256 or not presented or not hmac.compare_digest(agency.cert_sha256, presented):
            raise Unauthenticated("this certificate is not the agency's registered one")
        if agency.disabled:
            raise PermissionDenied("this certificate's client is not a registered, enabled agency")
        return agency

    # --- creating ----------------------------------------------------------------------------------------

    def _draft(self, subject: str, agency: Agency, terms: Terms, now: datetime) -> ConsentArtefact:
        catalog_purpose(terms.purpose)  # an unknown code is INVALID_ARGUMENT before anything else
        if terms.expiry is None:
            raise InvalidArgument("expiry is required")
        start = terms.start or now
        if now - START_SLACK <= start < now:
            start = now
        frequency = terms.frequency
        if frequency is None:
            frequency = Frequency(max(1, min(terms.max_fetches, artefacts.MAX_FREQUENCY)), FrequencyUnit.DAY)
        return artefacts.draft(
            subject=subject,
            client_id=agency.client_id,
            purpose=terms.purpose,
            documents=terms.documents,
            document_types=terms.document_types,
            start=start,
            expiry=terms.expiry,
            data_life=terms.data_life,
            max_fetches=terms.max_fetches,
            frequency=frequency,
            now=now,
        )

    async def request(self, client_id: str, id_number: str, terms: Terms) -> Record:
        """An agency asks a citizen (by ID number) for consent: a PENDING artefact."""
        agency = await self.agency(client_id)
        try:
            number = str(parse_id_number(id_number, self._clock().date()))
        except InvalidIdNumber:
            raise InvalidArgument("citizen_id_number must be a valid 12-digit personal identification number") from None
        artefact = self._draft(self._pseudonyms.ref(number), agency, terms, self._clock())
        if terms.purpose not in agency.purposes:
            raise PermissionDenied(f"this agency is not registered for the purpose {terms.purpose}")
        await self._store.create(
            artefact, self._subjects.subject(number), audit=_row(f"agency:{client_id}", REQUEST, artefact)
        )
        return Record(await self._store.get(artefact.id), agency.name)

    async def grant(self, citizen: Citizen, client_id: str, terms: Terms) -> Record:
        """A citizen grants an agency on their own initiative: approved and signed at once (ACTIVE)."""
        agency = await self._agencies.get(client_id)
        if agency is None or agency.disabled:
            raise NotFound("no such agency")
        now = self._clock()
        artefact = self._draft(citizen.subject, agency, terms, now)
        if terms.purpose not in agency.purposes:
            raise InvalidArgument(f"this agency is not registered for the purpose {terms.purpose}")
        approved = artefact.approved(now.replace(microsecond=0))
        signed = (approved, artefacts.sign(approved, self._key.private))
        await self._store.create(artefact, citizen.sub, signed, audit=_row("citizen", GRANT, artefact))
        metrics.consent_decided("granted")
        return Record(await self._store.get(artefact.id), agency.name)

    # --- reading -----------------------------------------------------------------------------------------

    async def _record(self, stored: StoredConsent) -> Record:
        names = await self._agencies.names({stored.artefact.client_id})
        return Record(stored, names.get(stored.artefact.client_id, stored.artefact.client_id))

    async def _citizens(self, citizen: Citizen, consent_id: uuid.UUID) -> StoredConsent:
        stored = await self._store.get(consent_id)
        if stored.artefact.subject != citizen.subject:
            raise NotFound("no such consent")
        return stored

    async def _agencys(self, client_id: str, consent_id: uuid.UUID) -> StoredConsent:
        stored = await self._store.get(consent_id)
        if stored.artefact.client_id != client_id:
            raise NotFound("no such consent")
        return stored

    async def mine(self, citizen: Citizen, consent_id: uuid.UUID) -> Record:
        return await self._record(await self._citizens(citizen, consent_id))

    async def list(
        self, citizen: Citizen, status: Status | None, page_size: int, page_token: str
    ) -> tuple[list[Record], str]:
        """A citizen's consents, newest first, ``page_size`` (0: 20, at most 100) at a time."""
        size = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        after = decode_cursor(page_token) if page_token else None
        found = await self._store.list_for_subject(citizen.subject, status, size + 1, after)
        page, more = found[:size], len(found) > size
        names = await self._agencies.names({c.artefact.client_id for c in page})
        records = [Record(c, names.get(c.artefact.client_id, c.artefact.client_id)) for c in page]
        token = encode_cursor((page[-1].artefact.created_at, page[-1].artefact.id)) if more else ""
        return records, token

    async def status(self, client_id: str, consent_id: uuid.UUID) -> SignedStatus:
        """The agency's consent's status, signed (``typ: consent-status+jwt``)."""
        await self.agency(client_id)
        stored = await self._agencys(client_id, consent_id)
        jws = self._key.sign_status(
            self._issuer, consent_id, client_id, stored.status, stored.counters.fetches, stored.canonical,
            self._clock(),
        )  # fmt: skip
        return SignedStatus(stored.status, stored.counters.fetches, jws)

    async def jwks(self) -> dict[str, Any]:
        """The JWK Set (RFC 7517 §5) of the public consent keys: the current one first, then the earlier ones
        whose artefacts may still be in force (``consent.signing_keys``)."""
        earlier = [jwk for jwk in await self._store.public_keys() if jwk.get("kid") != self._key.kid]
        return {"keys": [self._key.public_jwk, *earlier]}

    # --- transitions -------------------------------------------------------------------------------------

    async def decide(self, citizen: Citizen, consent_id: uuid.UUID, event: Event) -> Record:
        """The citizen approves, rejects, pauses, resumes or revokes one of their consents."""
        stored = await self._citizens(citizen, consent_id)
        await self._transition(stored, event, Actor.CITIZEN, "citizen")
        return await self._record(await self._store.get(consent_id))

    async def decide_as_agency(self, client_id: str, consent_id: uuid.UUID, event: Event) -> Record:
        """An agency trying one of the citizen's decisions on its own consent: the state machine decides (only
        REVOKE is an agency's; the others are PERMISSION_DENIED, audited as refused)."""
        await self.agency(client_id)
        stored = await self._agencys(client_id, consent_id)
        await self._transition(stored, event, Actor.AGENCY, f"agency:{client_id}")
        return await self._record(await self._store.get(consent_id))

    async def revoke_as_agency(self, client_id: str, consent_id: uuid.UUID) -> Record:
        await self.agency(client_id)
        stored = await self._agencys(client_id, consent_id)
        await self._transition(stored, Event.REVOKE, Actor.AGENCY, f"agency:{client_id}")
        return await self._record(await self._store.get(consent_id))

    async def _transition(self, stored: StoredConsent, event: Event, actor: Actor, who: str) -> Status:
        """The transition and its row in one transaction (the store's); a refusal found here first is
        audited on its own, one the store finds under the lock by the store."""
        artefact, now = stored.artefact, self._clock()
        action = ACTIONS[event]
        try:
            states.transition(stored.status, event, actor)  # the clear error first; the store checks again, locked
            approved = None
            if event is Event.APPROVE:
                if now >= artefact.expiry:
                    raise FailedPrecondition("the consent has expired: it can no longer be approved")
                signed = artefact.approved(now.replace(microsecond=0))
                approved = (signed, artefacts.sign(signed, self._key.private))
        except (states.IllegalTransition, states.ActorNotAllowed, FailedPrecondition, PermissionDenied) as error:
            await self._audited(_row(who, action, artefact, error.message))
            raise

        def audit(reason: str | None) -> AuditEvent:
            return _row(who, action, artefact, reason)

        status = await self._store.transition(artefact.id, event, actor, now, approved, audit)
        metrics.consent_decided(DECISIONS[event])
        return status

    async def expire_due(self, limit: int = EXPIRY_BATCH) -> list[uuid.UUID]:
        """One sweep: consents past their expiry → EXPIRED, each with its row (actor ``system``) in the sweep's
        transaction."""
        expired = await self._store.expire_due(self._clock(), limit, _expiry_row)
        metrics.consent_decided("expired", len(expired))
        return expired

    async def run_expiry(self, interval: float) -> None:
        """A sweep every ``interval`` seconds until cancelled; errors are logged, never fatal."""
        while True:
            try:
                while len(await self.expire_due()) == EXPIRY_BATCH:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as error:  # an outage: the next sweep catches up
                log.warning("consent.expiry_failed", error=type(error).__name__)
            await asyncio.sleep(interval)

    # --- notifications -----------------------------------------------------------------------------------

    async def set_notification_url(self, client_id: str, url: str) -> str:
        """``url`` already checked (``consent.notifications.check_url``)."""
        await self.agency(client_id)
        await self._store.set_notification_url(client_id, url)
        return url

    # --- audit -------------------------------------------------------------------------------------------

    async def _audited(self, event: AuditEvent) -> None:
        """A refusal's row on its own (nothing changed); one that cannot be written is UNAVAILABLE."""
        async with logged():
            await self._audit.append(event)


def _detail(consent_id: uuid.UUID, client_id: str, purpose: str, reason: str | None) -> dict[str, Any]:
    detail = {"consent_id": str(consent_id), "client_id": client_id, "purpose": purpose}
    if reason is not None:
        detail["reason"] = reason
    return detail


def _row(actor: str, action: str, artefact: ConsentArtefact, reason: str | None = None) -> AuditEvent:
    """The audit row of ``action`` on ``artefact``: success, or refused for ``reason``."""
    outcome = "success" if reason is None else "refused"
    detail = _detail(artefact.id, artefact.client_id, artefact.purpose, reason)
    return AuditEvent(actor, action, outcome, artefact.subject, None, detail)


def _expiry_row(due: Due) -> AuditEvent:
    """The sweep's row of one expired consent (from the row's plain columns: it is written even for an
    artefact that no longer verifies)."""
    detail = _detail(due.consent_id, due.client_id, due.purpose, None)
    return AuditEvent("system", ACTIONS[Event.EXPIRE], "success", due.subject, None, detail)
