"""The electronic health book's use cases (issue 11, item 4): facilities push visits, citizens read their book.

After the Ministry of Health's decision 1332/QĐ-BYT (2024) on the electronic health book ("Sổ sức khỏe điện tử"):

- A **facility** is an agency registered with the role ``facility`` (migration 0016), calling with the certificate
  registered for it (``issuance.agencies.PostgresAgencyDirectory.require(caller, "facility")``: another agency is
  PERMISSION_DENIED, an earlier certificate UNAUTHENTICATED). It pushes visit records (``push``), validated by the
  domain (``issuance.health.visits``: ICD-10 2019 codes, impossible dates, nothing in the future), for a citizen the
  population registry holds (else INVALID_ARGUMENT ``citizen_id_number``), no visit before their birth date. The
  facility's name in the record is its registered name, whatever it states. A push is idempotent per the
  facility's client and its record id (MA_LK): the same content again returns the visit stored, other content is
  ALREADY_EXISTS (``issuance.health.store``). It reads back only the visits it pushed itself (``pushed``; any
  other id is NOT_FOUND, as an unknown one), never a book (``book.authorize_facility_read``): the citizen's RPCs
  admit only a citizen's token.
- A **citizen** (an access token for ``urn:dinhdanh:service:health`` with the scope ``health.read``; ``sub`` is the
  opaque subject of ``identity.oidc.subjects``) reads their book (``book``: the registry's administrative data,
  the medical and vaccination history, the visits newest first; ``book.assemble``), one visit, a visit's PDF
  (``issuance.health.visit_pdf``), and has a signed extract issued into their vault (``issue_extract``, once per
  request id): the claims of ``book.extract_claims`` signed with HEALTH_SIGNING and delivered as an issued
  document of type HEALTH_BOOK by the health issuer's agency client (``issuance.delivery.VaultDeliverer``). Like
  any vault document, it is then shared with a doctor or an agency only through a consent artefact (docs/consent.md).

Audit (``audit.events``, no personal data: the citizen by pseudonym): every push (``health.visit.push``: outcome
``success``, ``replay`` or ``refused``), every read (``health.book.read``, ``health.visit.read``,
``health.visit.pdf``, ``health.visit.read_pushed``) and every extract (``health.extract.issue``) commits its row in
the transaction that does it (the store), or nothing happens (UNAVAILABLE); a repeated extract request is
``health.extract.issue`` with the outcome ``replay``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from joserfc import jws

from audit.events import AuditEvent, Pseudonymizer
from consent.artefact import canonical_json
from core import logs
from core.callers import Caller
from core.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated, Unavailable
from identity.oidc.subjects import Subjects
from issuance.agencies import Agency, AgencyDirectory
from issuance.credentials import VCT_HEALTH_BOOK_EXTRACT
from issuance.health import visit_pdf
from issuance.health.book import HealthBook, assemble, extract_claims, visit_ref
from issuance.health.store import HealthStore, StoredVisit
from issuance.health.visits import VIETNAM, check_dates, parse_visit
from issuance.issuer_keys import ALGORITHM, SigningKey
from registry.citizen import Citizen
from registry.idnumber import InvalidIdNumber
from registry.idnumber import parse as parse_id_number
from vault import signatures
from vault.documents import DocumentType, Issued

__all__ = [
    "EXTRACT_TITLE",
    "EXTRACT_TYPE",
    "FACILITY_ROLE",
    "CitizenRef",
    "Deliverer",
    "Extract",
    "HealthService",
    "Registry",
]

log = logs.get("health")

FACILITY_ROLE = "facility"
EXTRACT_TYPE = "health-book-extract+jwt"  # the JWS typ of a signed extract (RFC 7515 §4.1.9)
EXTRACT_TITLE = "Trích lục sổ sức khỏe điện tử"
NOT_FOUND = "no such visit"


class Registry(Protocol):
    """The population registry (``GetCitizen``, open to the health service)."""

    async def citizen(self, id_number: str) -> Citizen | None:
        """The citizen with this ID number; ``None`` when the registry holds nobody with it."""
        ...


class Deliverer(Protocol):
    """Delivery into a citizen's vault as the health issuer (``issuance.delivery.VaultDeliverer``)."""

    @property
    def client_id(self) -> str: ...

    async def deliver(
        self,
        *,
        citizen_id_number: str,
        issuer_document_id: str,
        document_type: int,
        title: str,
        filename: str,
        content: bytes,
        issuer_signature: bytes,
        issued_on: date | None = None,
        expires_on: date | None = None,
    ) -> Any:
        """The vault's document (an object with ``id``); raises ``issuance.delivery.DeliveryError``."""
        ...


@dataclass(frozen=True, slots=True)
class CitizenRef:
    """The calling citizen: ID number (from the token's opaque ``sub``) and audit pseudonym."""

    id_number: str
    subject: str


@dataclass(frozen=True, slots=True)
class Book:
    """The assembled book with the stored visits it was made of (their platform ids, newest first)."""

    citizen: Citizen
    book: HealthBook
    visits: tuple[StoredVisit, ...]


@dataclass(frozen=True, slots=True)
class Extract:
    """A signed extract delivered: its id, the vault's document id, the content this call signed (``b""`` when the
    request was recorded already; of calls in parallel, the vault keeps the content delivered first)."""

    id: uuid.UUID
    vault_document_id: str
    content: bytes


class HealthService:
    def __init__(
        self,
        store: HealthStore,
        registry: Registry,
        agencies: AgencyDirectory,
        subjects: Subjects,
        pseudonyms: Pseudonymizer,
        key: SigningKey,
        issuer: str,
        deliverer: Deliverer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._registry = registry
        self._agencies = agencies
        self._subjects = subjects
        self._pseudonyms = pseudonyms
        self._key = key
        self._issuer = issuer.rstrip("/")
        self._deliverer = deliverer
        self._clock = clock

    # --- who ---------------------------------------------------------------------------------------------

    async def facility(self, caller: Caller) -> Agency:
        """The calling facility: a registered, enabled agency with the role ``facility``, its own certificate."""
        return await self._agencies.require(caller, FACILITY_ROLE)

    def citizen(self, sub: str, sector: str | None = None) -> CitizenRef:
        """The citizen behind a token's opaque ``sub`` (UNAUTHENTICATED when it is none of this platform's), a
        pairwise one with its ``sector`` (OIDC Core §8.1)."""
        id_number = self._subjects.id_number(sub, sector)
        if id_number is None:
            raise Unauthenticated("the token's subject is not a citizen of this platform")
        return CitizenRef(id_number, self._pseudonyms.ref(id_number))

    async def _registered(self, id_number: str) -> Citizen:
        citizen = await self._registry.citizen(id_number)
        if citizen is None:
            raise FailedPrecondition("the population registry no longer holds this citizen")
        return citizen

    # --- facilities --------------------------------------------------------------------------------------

    async def push(self, caller: Caller, record: Mapping[str, Any] | Callable[[], Mapping[str, Any]]) -> StoredVisit:
        """Validate and store one visit record (a ``visits.parse_visit`` mapping, or what makes it: called once the
        caller is known to be a facility, so another caller learns nothing about its input; ``facility.name`` is set
        here)."""
        agency = await self.facility(caller)
        if callable(record):
            record = record()
        now = self._clock().astimezone(UTC).replace(microsecond=0)
        members = dict(record)
        facility = members.get("facility")
        if isinstance(facility, Mapping):
            members["facility"] = {**facility, "name": agency.name}
        visit = parse_visit(members, client_id=agency.client_id, now=now)  # form, codes, dates: before any lookup
        visit_pdf.check_printable(visit)  # a stored visit always renders as its PDF
        try:
            number = str(parse_id_number(visit.citizen_id_number, now.astimezone(VIETNAM).date()))
        except InvalidIdNumber as error:
            raise InvalidArgument(f"citizen_id_number: {error}") from None
        citizen = await self._registry.citizen(number)
        if citizen is None:
            raise InvalidArgument("citizen_id_number: the population registry holds no citizen with this number")
        check_dates(visit, now=now, birth_date=citizen.date_of_birth)
        subject = self._pseudonyms.ref(citizen.id_number)

        def audit(stored: StoredVisit, outcome: str) -> AuditEvent:
            return AuditEvent(
                actor=f"agency:{agency.client_id}",
                action="health.visit.push",
                outcome=outcome,
                subject=subject,
                detail={"visit_id": str(stored.id), "facility_code": visit.facility.code},
            )

        stored, created = await self._store.push(StoredVisit(uuid.uuid4(), visit, now), subject, audit)
        log.info("health.visit_pushed", client_id=agency.client_id, visit_id=str(stored.id), created=created)
        return stored

    async def pushed(self, caller: Caller, record_id: str) -> StoredVisit:
        """A visit the calling facility pushed itself (another facility's, or none: NOT_FOUND)."""
        agency = await self.facility(caller)
        if not isinstance(record_id, str) or not record_id:
            raise InvalidArgument("facility_record_id is required")
        audit = AuditEvent(
            actor=f"agency:{agency.client_id}",
            action="health.visit.read_pushed",
            outcome="success",
            detail={"facility_record_id": record_id[:100]},
        )
        stored = await self._store.pushed(agency.client_id, record_id, audit)
        if stored is None:
            raise NotFound(NOT_FOUND)
        return stored

    # --- citizens ----------------------------------------------------------------------------------------

    def _audit(self, citizen: CitizenRef, action: str, **detail: Any) -> AuditEvent:
        return AuditEvent(actor="citizen", action=action, outcome="success", subject=citizen.subject, detail=detail)

    async def book(self, citizen: CitizenRef) -> Book:
        """The citizen's book: the registry's record, the medical and vaccination history, the visits."""
        registered = await self._registered(citizen.id_number)
        stored = await self._store.book(citizen.subject, self._audit(citizen, "health.book.read"))
        book = assemble(registered, [item.visit for item in stored])
        by_ref = {visit_ref(item.visit): item for item in stored}
        return Book(registered, book, tuple(by_ref[visit_ref(visit)] for visit in book.visits))

    async def visit(self, citizen: CitizenRef, visit_id: str) -> StoredVisit:
        """One of the citizen's visits (another's, or none: NOT_FOUND)."""
        return await self._visit(citizen, visit_id, "health.visit.read")

    async def _visit(self, citizen: CitizenRef, visit_id: str, action: str) -> StoredVisit:
        identifier = _visit_id(visit_id)
        audit = self._audit(citizen, action, visit_id=str(identifier))
        stored = await self._store.visit(citizen.subject, identifier, audit)
        if stored is None or stored.visit.citizen_id_number != citizen.id_number:
            raise NotFound(NOT_FOUND)
        return stored

    async def visit_pdf(self, citizen: CitizenRef, visit_id: str) -> visit_pdf.VisitPdf:
        """The visit's summary as a PDF with its signed QR."""
        stored = await self._visit(citizen, visit_id, "health.visit.pdf")
        registered = await self._registered(citizen.id_number)
        book = assemble(registered, [stored.visit])
        # About 0.1 s of CPU (fpdf2): in a worker thread, so the event loop keeps serving meanwhile.
        return await asyncio.to_thread(
            visit_pdf.render, book.administrative, str(stored.id), stored.visit, self._key, self._verify_url
        )

    @property
    def _verify_url(self) -> str:
        return f"{self._issuer}/verify" if self._issuer else "https://dinhdanh.gov.vn/verify"

    async def issue_extract(self, citizen: CitizenRef, visit_ids: Sequence[str], request_id: str) -> Extract:
        """A signed extract of the chosen visits (none chosen: the whole book) delivered into the citizen's vault.

        Idempotent per the client's ``request_id`` (a UUID): the extract's id is ``extract_id(subject, request_id)``,
        the vault's ``issuer_document_id``, so a retry, or calls in parallel, of one request give one vault document
        (the vault delivers once per issuer document id) and one ``health.extracts`` row (inserted once); a request
        already recorded returns its vault document (the first call's choice of visits), with a ``replay`` audit row.
        """
        extract_id = extract_key(citizen.subject, request_id)
        chosen = {_visit_id(text) for text in visit_ids}
        replay = self._audit(citizen, "health.extract.issue", extract_id=str(extract_id))
        recorded = await self._store.extract(extract_id, citizen.subject, dataclasses.replace(replay, outcome="replay"))
        if recorded is not None:
            return Extract(extract_id, recorded, b"")
        if self._deliverer is None:
            raise Unavailable("the health service has no vault delivery configured (DINHDANH_HEALTH_CLIENT_ID)")
        current = await self.book(citizen)
        picked = [item for item in current.visits if not chosen or item.id in chosen]
        missing = chosen - {item.id for item in picked}
        if missing:
            raise NotFound(NOT_FOUND)
        refs = [visit_ref(item.visit) for item in picked]
        doses = [entry.ref for entry in current.book.vaccinations if entry.visit_ref in refs]
        if not refs:
            raise FailedPrecondition("the health book has no visit to extract yet")
        claims = extract_claims(current.book, visits=refs, vaccinations=doses)
        now = self._clock().astimezone(UTC).replace(microsecond=0)
        content = self._signed_extract(extract_id, claims, now)
        issued_on = now.astimezone(VIETNAM).date()
        sha256 = _sha256(content)
        issued = Issued(self._deliverer.client_id, str(extract_id), b"")
        signature = signatures.sign(
            self._key.private, ALGORITHM, issued, DocumentType.HEALTH_BOOK, sha256, (issued_on, None)
        )
        from issuance.delivery import DeliveryError  # the adapter's error; imported late (it pulls in grpc)

        try:
            document = await self._deliverer.deliver(
                citizen_id_number=citizen.id_number,
                issuer_document_id=str(extract_id),
                document_type=DOCUMENT_TYPE_HEALTH_BOOK,
                title=f"{EXTRACT_TITLE} ({issued_on.strftime('%d/%m/%Y')})",
                filename=f"trich-luc-so-suc-khoe-{issued_on:%Y%m%d}-{str(extract_id)[:8]}.json",
                content=content,
                issuer_signature=signature,
                issued_on=issued_on,
            )
        except DeliveryError as error:
            log.warning("health.extract_not_delivered", code=error.code, retryable=error.retryable)
            if error.retryable:
                raise Unavailable("the extract could not be delivered into the vault now; try again") from None
            raise FailedPrecondition(f"the vault refused the extract ({error.code})") from None
        document_id = str(document.id)

        def audit(outcome: str) -> AuditEvent:
            event = self._audit(citizen, "health.extract.issue", extract_id=str(extract_id),
                                vault_document_id=document_id, visits=len(picked))  # fmt: skip
            return dataclasses.replace(event, outcome=outcome)

        recorded = await self._store.record_extract(extract_id, citizen.subject, [item.id for item in picked],
                                                    document_id, now, audit)  # fmt: skip
        return Extract(extract_id, recorded, content)

    def _signed_extract(self, extract_id: uuid.UUID, claims: Mapping[str, Any], now: datetime) -> bytes:
        """The extract's document: JSON ``{"extract": payload, "jws": compact JWS over the payload's canonical JSON}``
        (ES256, ``typ`` ``health-book-extract+jwt``, ``kid`` the health issuer key's thumbprint)."""
        payload = {
            "iss": self._issuer,
            "jti": str(extract_id),
            "iat": int(now.timestamp()),
            "vct": VCT_HEALTH_BOOK_EXTRACT,
            **claims,
        }
        header = {"alg": ALGORITHM, "kid": self._key.kid, "typ": EXTRACT_TYPE}
        token = jws.serialize_compact(header, canonical_json(payload), self._key.private, algorithms=[ALGORITHM])
        document = {"extract": payload, "jws": str(token)}
        return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1).encode()


DOCUMENT_TYPE_HEALTH_BOOK = 6  # vault.proto DOCUMENT_TYPE_HEALTH_BOOK (DocumentType.HEALTH_BOOK)
# The namespace of the extracts' ids (RFC 9562 §5.5, UUIDv5): uuid5(NAMESPACE_URL, "urn:dinhdanh:health:extract").
EXTRACT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:dinhdanh:health:extract")


def extract_key(subject: str, request_id: str) -> uuid.UUID:
    """The extract's id for the citizen's audit pseudonym and the client's ``request_id`` (a UUID, else
    INVALID_ARGUMENT): a name-based UUIDv5 (RFC 9562 §5.5), the same for a retry of the same request, another for
    another citizen (who learns nothing of it: the pseudonym is keyed)."""
    try:
        key = uuid.UUID(request_id)
    except (ValueError, TypeError, AttributeError):
        raise InvalidArgument("request_id must be a UUID chosen by the client (the idempotency key)") from None
    return uuid.uuid5(EXTRACT_NAMESPACE, f"{subject}/{key}")


def _sha256(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


def _visit_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        raise InvalidArgument("id must be a visit id (a UUID)") from None
