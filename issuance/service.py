"""The dossier use cases of criminal-record certificates (issue 11, item 1): apply, decide, follow.

Law on Judicial Records 2009 (No. 28/2009/QH12, as amended by Law 107/2025/QH15):

* **Applying** (Art. 45-46): a citizen at assurance level 2 (checked by the transport's policy) answers the six
  questions of ``issuance.application``; the other 17 fields fill from the National Population Database (the
  registry service), each with its source. The application is validated, the subject's judicial record is read
  from the judicial-records service, the fee recorded (Circular 244/2016/TT-BTC, ``issuance.fees``: the age groups
  from the registry), the deadline set (Art. 48, ``issuance.dossiers.statutory_days``), and the dossier opened
  SUBMITTED, then VERIFYING (SYSTEM, the record read), then APPROVED (SYSTEM) when the auto-approval policy
  approves a clean record (``issuance.dossiers.auto_decision``); otherwise it waits for an officer. ``Apply`` is
  idempotent by the client's request id: the same id (even sent concurrently) opens one dossier.
* **Representation** (Art. 45(2), 46(2)): a relative may ask for Form No. 1 about a citizen with a written
  authorisation (its reference is required); nobody may ask for Form No. 2 for someone else (PERMISSION_DENIED,
  ``issuance.forms.check_entitled``). The dossier is about the subject: both the requester and the subject see it.
* **Agencies** (Art. 7(2)-(3), 41, 46(1)): a procedural authority (client role ``procedural_authority``) may
  obtain Form No. 2 or No. 1; an agency a law allows (``authorised_by_law``) Form No. 1, citing that law; any
  other agency nothing. No fee (``issuance.fees.fee(agency=True)``).
* **Officers** of the Judicial Records Centre (client role ``officer``): list waiting dossiers (oldest deadline
  first, optionally only the overdue), read one with whether the record is clean, approve, or reject with a
  reason (``issuance.dossiers.MACHINE``: an illegal transition is FAILED_PRECONDITION).

Visibility: a citizen's dossier is seen by its requester and its subject; an agency's by that agency; anyone
else gets NOT_FOUND, exactly as for an unknown id.

Audit: every status change appends an ``audit.events`` row in the transaction of the change (the store inserts
it): ``{actor: citizen | system | agency:<client_id>, action: issuance.submit | issuance.verify |
issuance.approve | issuance.reject, subject: the subject's pseudonym, detail: {dossier_id, tracking_number,
form, requester, status}}`` — no personal data (the public transparency log feeds on it).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from audit.events import AuditEvent, Pseudonymizer
from core.callers import Caller
from core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from identity.oidc.subjects import Subjects
from issuance import dossiers
from issuance.agencies import Agency, AgencyDirectory
from issuance.application import ASKED, CITIZEN, PURPOSES, Answers, FilledField, RequestPurpose, fill_application
from issuance.dossiers import VIETNAM_TIME, Actor, AutoApprovalPolicy, Event, Status
from issuance.fees import Fee, fee, groups_from_registry
from issuance.forms import FormNo, Requester, RequesterKind, check_entitled
from issuance.judicial import JudicialRecord
from issuance.store import (
    DossierStore,
    IssuerKey,
    NewDossier,
    StoredCredential,
    StoredDossier,
    StoredEvent,
    answers_json,
)
from registry.citizen import Citizen
from registry.idnumber import InvalidIdNumber
from registry.idnumber import parse as parse_id_number

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_REFERENCE = 200
MAX_PURPOSE = 300
OFFICER = "officer"
PROCEDURAL_AUTHORITY = "procedural_authority"
AUTHORISED_BY_LAW = "authorised_by_law"
ACTIONS = {
    Status.SUBMITTED: "issuance.submit",
    Status.VERIFYING: "issuance.verify",
    Status.APPROVED: "issuance.approve",
    Status.REJECTED: "issuance.reject",
    Status.ISSUED: "issuance.issue",
}
DECISIONS = {Event.APPROVE, Event.REJECT}
PREFILL_ANSWERS = {
    FormNo.ONE: Answers(1, "EMPLOYMENT", 1, "ELECTRONIC", "prefill@example.vn", False),
    FormNo.TWO: Answers(2, "PERSONAL", 1, "ELECTRONIC", "prefill@example.vn"),
}


class CitizenRegistry(Protocol):
    async def citizen(self, id_number: str) -> Citizen | None:
        """The registry's record of ``id_number``; ``None`` when the registry knows nobody by it."""


class JudicialRecords(Protocol):
    async def record(self, id_number: str) -> JudicialRecord:
        """The person's judicial record (no convictions: a clean record)."""


@dataclass(frozen=True, slots=True)
class Me:
    """The calling citizen: the ID number (from the token's opaque ``sub``) and the audit pseudonym."""

    id_number: str
    ref: str


@dataclass(frozen=True, slots=True)
class Representation:
    subject_id_number: str
    authorisation_reference: str


@dataclass(frozen=True, slots=True)
class Prefill:
    fields: tuple[FilledField, ...]
    asked: frozenset[str]
    purposes: tuple[RequestPurpose, ...]
    fee: Fee
    working_days: int
    fee_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    dossiers: list[StoredDossier]
    next_token: str


def encode_cursor(at: datetime | date, last: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{last}".encode()).rstrip(b"=").decode()


def decode_cursor(token: str, kind: type[datetime] | type[date]) -> tuple[Any, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, last = text.split("|")
        value = kind.fromisoformat(at)
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("naive")
        return value, uuid.UUID(last)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidArgument("page_token is not one this service issued") from None


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument("page_size must not be negative")
    return min(size or DEFAULT_PAGE, MAX_PAGE)


def dossier_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgument("id must be a dossier id (a UUID)") from None


def request_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgument("request_id must be a UUID chosen by the client (the idempotency key)") from None


def id_number_of(text: str) -> str:
    try:
        return parse_id_number(text.strip()).value
    except InvalidIdNumber as error:
        raise InvalidArgument(f"subject_id_number: {error}") from None


def holder_jwk(text: str) -> dict[str, Any] | None:
    """The holder's public P-256 JWK (the credential's ``cnf.jwk``, RFC 7800 §3.2); ``""``: none."""
    if not text.strip():
        return None
    try:
        jwk = json.loads(text)
    except ValueError:
        raise InvalidArgument("holder_jwk must be the JSON of a public JWK") from None
    if (
        not isinstance(jwk, dict)
        or jwk.get("kty") != "EC"
        or jwk.get("crv") != "P-256"
        or not isinstance(jwk.get("x"), str)
        or not isinstance(jwk.get("y"), str)
    ):
        raise InvalidArgument("holder_jwk must be a public P-256 EC key (kty EC, crv P-256, x, y)")
    if "d" in jwk:
        raise InvalidArgument("holder_jwk must be the public key only: never send the private part")
    return {name: jwk[name] for name in ("kty", "crv", "x", "y")}


def clean_record(form: FormNo, record: JudicialRecord, on: date) -> bool:
    """Has the record nothing the form would print? (No. 1: nothing unexpunged, no ban; No. 2: no conviction.)"""
    return record.clean_at(on) if form is FormNo.ONE else not record.convictions


class IssuanceService:
    def __init__(
        self,
        store: DossierStore,
        registry: CitizenRegistry,
        judicial: JudicialRecords,
        agencies: AgencyDirectory,
        subjects: Subjects,
        pseudonyms: Pseudonymizer,
        policy: AutoApprovalPolicy,
        unit: str = dossiers.DEFAULT_UNIT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._registry = registry
        self._judicial = judicial
        self._agencies = agencies
        self._subjects = subjects
        self._pseudonyms = pseudonyms
        self._policy = policy
        self._unit = unit
        self._clock = clock

    # --- who ---------------------------------------------------------------------------------------------

    def me(self, sub: str, sector: str | None = None) -> Me:
        """The citizen behind a token's opaque ``sub`` (UNAUTHENTICATED when it is none of this platform's), a
        pairwise one with its ``sector`` (OIDC Core §8.1)."""
        id_number = self._subjects.id_number(sub, sector)
        if id_number is None:
            raise Unauthenticated("the token's subject is not a citizen of this platform")
        return Me(id_number, self._pseudonyms.ref(id_number))

    async def officer(self, caller: Caller) -> Agency:
        """The Judicial Records Centre's officer agency (role ``officer``, its registered certificate)."""
        return await self._agencies.require(caller, OFFICER)

    async def _citizen(self, id_number: str) -> Citizen:
        citizen = await self._registry.citizen(id_number)
        if citizen is None:
            raise NotFound("the population registry holds no citizen with this ID number")
        return citizen

    # --- citizens ----------------------------------------------------------------------------------------

    async def prefill(self, me: Me, form: int) -> Prefill:
        """The form as it would be submitted: the registry's 17 fields with their sources, the six left to ask,
        the purposes of ``form`` (0: both), the fee for one or two copies, the statutory time the registry shows."""
        if form not in (0, 1, 2):
            raise InvalidArgument("form must be 1, 2, or 0 for both")
        citizen = await self._citizen(me.id_number)
        chosen = FormNo(form) if form else FormNo.ONE
        filled = fill_application(citizen, PREFILL_ANSWERS[chosen])
        fields = tuple(
            FilledField(f.name, f.label_vi, "", CITIZEN, False) if f.name in ASKED else f for f in filled.fields
        )
        purposes = tuple(p for p in PURPOSES.values() if not form or FormNo(form) in p.forms)
        today = self._today()
        groups = groups_from_registry(citizen.date_of_birth, today)
        days = dossiers.statutory_days(citizen)
        return Prefill(fields, frozenset(ASKED), purposes, fee(1, groups), days, tuple(sorted(g.value for g in groups)))

    async def apply(
        self,
        me: Me,
        request: str,
        answers: Answers,
        on_behalf_of: Representation | None,
        holder: str,
    ) -> StoredDossier:
        """Open the dossier (see the module docstring); the same ``request`` id returns the one opened before."""
        key = request_id(request)
        existing = await self._store.find(me.ref, key)
        if existing is not None:
            return existing
        jwk = holder_jwk(holder)
        kind, subject_id, authorisation = RequesterKind.SELF, me.id_number, ""
        if on_behalf_of is not None:
            subject_id = id_number_of(on_behalf_of.subject_id_number)
            authorisation = " ".join(on_behalf_of.authorisation_reference.split())
            if len(authorisation) > MAX_REFERENCE:
                raise InvalidArgument(f"authorisation_reference is at most {MAX_REFERENCE} characters")
            if subject_id != me.id_number:
                kind = RequesterKind.REPRESENTATIVE
            elif authorisation:
                raise InvalidArgument("a citizen asking about themself needs no authorisation: leave on_behalf_of out")
        if answers.form in (1, 2):
            check_entitled(FormNo(answers.form), Requester(kind, written_authorisation=bool(authorisation)))
        citizen = await self._citizen(subject_id)
        application = fill_application(citizen, answers)
        record = await self._judicial.record(subject_id)
        now = self._clock()
        today = now.astimezone(VIETNAM_TIME).date()
        groups = groups_from_registry(citizen.date_of_birth, today)
        charged = fee(application.copies, groups)
        subject_ref = self._pseudonyms.ref(subject_id)
        actor = "citizen"
        return await self._open(
            key, kind, me.ref, "", authorisation, "", citizen, application.form, application.purpose.code,
            answers_json(answers), application.fields, charged, record, now, jwk, subject_ref, actor,
            tuple(sorted(g.value for g in groups)),
        )  # fmt: skip

    async def mine(self, me: Me, size: int, token: str) -> Page:
        limit = page_size(size)
        after = decode_cursor(token, datetime) if token else None
        found = await self._store.mine(me.ref, limit + 1, after)
        more = len(found) > limit
        found = found[:limit]
        last = found[-1] if more and found else None
        return Page(found, encode_cursor(last.received_at, last.id) if last else "")

    async def my_dossier(self, me: Me, text: str) -> StoredDossier:
        stored = await self._store.get(dossier_id(text))
        if stored is None or not stored.seen_by(me.ref):
            raise NotFound("no such dossier")
        return stored

    async def my_credential(self, me: Me, text: str) -> StoredCredential:
        stored = await self.my_dossier(me, text)
        return await self._issued(stored)

    # --- officers ----------------------------------------------------------------------------------------

    async def officer_list(self, status: Status | None, overdue_only: bool, size: int, token: str) -> Page:
        """Dossiers in ``status`` (default VERIFYING), oldest deadline first; ``overdue_only``: past their deadline
        day (Vietnam time; a final status is never overdue)."""
        chosen = status or Status.VERIFYING
        limit = page_size(size)
        after = decode_cursor(token, date) if token else None
        if overdue_only and chosen in dossiers.TERMINAL:
            return Page([], "")
        found = await self._store.by_status(chosen, self._today() if overdue_only else None, limit + 1, after)
        more = len(found) > limit
        found = found[:limit]
        last = found[-1] if more and found else None
        return Page(found, encode_cursor(last.deadline, last.id) if last else "")

    async def officer_dossier(self, text: str) -> StoredDossier:
        stored = await self._store.get(dossier_id(text))
        if stored is None:
            raise NotFound("no such dossier")
        return stored

    async def decide(self, officer: Agency, text: str, event: Event, reason: str) -> StoredDossier:
        """An officer approves or rejects (a reason required to reject) a VERIFYING dossier."""
        if event not in DECISIONS:
            raise InvalidArgument("an officer approves or rejects")
        reason = reason.strip()
        if event is Event.REJECT and not reason:
            raise InvalidArgument("a rejection needs a reason the citizen can read")
        if len(reason) > dossiers.MAX_REASON:
            raise InvalidArgument(f"a reason is at most {dossiers.MAX_REASON} characters")
        key = dossier_id(text)

        def audit(stored: StoredDossier, target: Status) -> AuditEvent:
            return _row(f"agency:{officer.client_id}", stored, target)

        return await self._store.transition(key, event, Actor.OFFICER, self._clock(), reason, officer.client_id, audit)

    # --- agencies ----------------------------------------------------------------------------------------

    async def apply_as_agency(
        self, caller: Caller, request: str, subject_id_number: str, form: int, legal_basis: str, purpose: str
    ) -> StoredDossier:
        """An agency's request about a citizen (Art. 7(2)-(3), 41, 46(1)); idempotent by ``request``."""
        agency = await self._agencies.roles_of(caller)
        key = request_id(request)
        existing = await self._store.find(agency.client_id, key)
        if existing is not None:
            return existing
        try:
            chosen = FormNo(form)
        except ValueError:
            raise InvalidArgument("form must be 1 (Phiếu số 1) or 2 (Phiếu số 2)") from None
        basis = " ".join(legal_basis.split())
        if agency.has(PROCEDURAL_AUTHORITY):
            kind = RequesterKind.PROCEDURAL_AUTHORITY
        elif agency.has(AUTHORISED_BY_LAW):
            kind = RequesterKind.AGENCY
        else:
            raise PermissionDenied(
                "only a procedural authority (Law on Judicial Records, Art. 7(2)) or an agency a law allows "
                "(Art. 7(3)) may obtain a certificate about a citizen; this agency is registered as neither"
            )
        check_entitled(chosen, Requester(kind, legal_basis=basis))
        text = " ".join(purpose.split())
        if not text or len(text) > MAX_PURPOSE or len(basis) > MAX_PURPOSE:
            raise InvalidArgument(f"purpose is required and, like legal_basis, at most {MAX_PURPOSE} characters")
        subject_id = id_number_of(subject_id_number)
        citizen = await self._citizen(subject_id)
        # the registry's 17 fields as for a citizen; the asked six are the agency's (no e-mail, no delivery)
        filled = fill_application(citizen, PREFILL_ANSWERS[chosen])
        fields = tuple(_agency_field(f, chosen, text, agency.name) if f.name in ASKED else f for f in filled.fields)
        record = await self._judicial.record(subject_id)
        answers = {"form": int(chosen), "purpose": text, "copies": 1, "delivery": "ELECTRONIC", "email": "",
                   "ban_certification": True, "postal_address": ""}  # fmt: skip
        return await self._open(
            key, kind, agency.client_id, agency.client_id, "", basis, citizen, chosen, text, answers, fields,
            fee(1, agency=True), record, self._clock(), None, self._pseudonyms.ref(subject_id),
            f"agency:{agency.client_id}", (),
        )  # fmt: skip

    async def agency_dossier(self, caller: Caller, text: str) -> StoredDossier:
        agency = await self._agencies.roles_of(caller)
        stored = await self._store.get(dossier_id(text))
        if stored is None or stored.client_id != agency.client_id:
            raise NotFound("no such dossier")
        return stored

    async def agency_certificate(self, caller: Caller, text: str) -> StoredCredential:
        return await self._issued(await self.agency_dossier(caller, text))

    # --- anyone ------------------------------------------------------------------------------------------

    async def issuer_keys(self) -> list[IssuerKey]:
        return await self._store.issuer_keys()

    # --- shared ------------------------------------------------------------------------------------------

    def _today(self) -> date:
        return self._clock().astimezone(VIETNAM_TIME).date()

    async def _issued(self, stored: StoredDossier) -> StoredCredential:
        credential = await self._store.credential(stored.id)
        if credential is None:
            raise NotFound("no such dossier")
        if credential.status is not Status.ISSUED or credential.credential is None:
            raise FailedPrecondition(f"nothing is issued yet: the dossier is {credential.status.value}")
        return credential

    async def _open(
        self,
        key: uuid.UUID,
        kind: RequesterKind,
        requester_ref: str,
        client_id: str,
        authorisation: str,
        legal_basis: str,
        citizen: Citizen,
        form: FormNo,
        purpose: str,
        answers: dict[str, Any],
        fields: tuple[FilledField, ...],
        charged: Fee,
        record: JudicialRecord,
        now: datetime,
        jwk: dict[str, Any] | None,
        subject_ref: str,
        actor: str,
        fee_groups: tuple[str, ...],
    ) -> StoredDossier:
        """SUBMITTED → VERIFYING (the record read) → APPROVED when the policy approves; stored with its history
        and audit rows in one transaction (or the dossier this requester opened with ``key`` before)."""
        today = now.astimezone(VIETNAM_TIME).date()
        tracking = dossiers.tracking_number(today, await self._store.next_sequence(), self._unit)
        days = dossiers.statutory_days(citizen, record)
        dossier = dossiers.open_dossier(tracking, citizen.id_number, form, charged, now, days)
        dossier = dossier.advance(Event.VERIFY, Actor.SYSTEM, now)
        decision = dossiers.auto_decision(self._policy, form, record, today)
        if decision.approve:
            dossier = dossier.advance(Event.APPROVE, Actor.SYSTEM, now, decision.reason)
        history = tuple(StoredEvent(c.status, c.at, c.actor, c.reason) for c in dossier.history)
        new = NewDossier(
            id=uuid.uuid4(), tracking_number=tracking, request_id=key, requester=kind, requester_ref=requester_ref,
            client_id=client_id, authorisation_ref=authorisation, legal_basis=legal_basis,
            id_number=citizen.id_number, subject=subject_ref, form=form, purpose=purpose, answers=answers,
            fields=fields, fee=charged, working_days=days, deadline=dossier.deadline, received_at=now,
            history=history, clean_record=clean_record(form, record, today), holder_jwk=jwk, fee_groups=fee_groups,
        )  # fmt: skip
        detail = {"dossier_id": str(new.id), "tracking_number": tracking, "form": int(form), "requester": kind.value}
        audit = [
            AuditEvent(
                actor if e.status is Status.SUBMITTED else "system",
                ACTIONS[e.status],
                "success",
                subject_ref,
                None,
                detail | {"status": e.status.value},
            )
            for e in history
        ]
        stored, _created = await self._store.create(new, audit)
        return stored


def _agency_field(f: FilledField, form: FormNo, purpose: str, agency: str) -> FilledField:
    values = {
        "form": f"Phiếu lý lịch tư pháp số {int(form)}",
        "purpose": purpose,
        "copies": "1",
        "delivery": f"Cấp cho cơ quan yêu cầu: {agency}",
        "ban_certification": "Có",
        "email": "",
    }
    value = values[f.name]
    return FilledField(f.name, f.label_vi, value, f"Cơ quan yêu cầu: {agency}", bool(value))


def _row(actor: str, stored: StoredDossier, target: Status) -> AuditEvent:
    detail = {
        "dossier_id": str(stored.id),
        "tracking_number": stored.tracking_number,
        "form": int(stored.form),
        "requester": stored.requester.value,
        "status": target.value,
    }
    return AuditEvent(actor, ACTIONS[target], "success", stored.subject, None, detail)
