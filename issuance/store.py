"""What the dossier use cases (``issuance.service``) need of their storage, and the stored dossier.

A dossier (hồ sơ, Law on Judicial Records 2009 Art. 45-48) is stored once with its status, its history (one
``issuance.dossier_events`` row per change) and everything the issuing worker needs to make the certificate:
the typed answers (:func:`answers_json`), the 23 filled fields as submitted, the fee, the deadline. The
PostgreSQL implementation is ``issuance.pg_store.PostgresDossierStore``.

:func:`application_of` turns a stored dossier back into the filed ``issuance.application.Application`` (the
fields as they were submitted, never refilled), which is what ``issuance.certificates`` issues from.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from audit.events import AuditEvent
from issuance.application import PURPOSES, Answers, Application, Delivery, FilledField, RequestPurpose
from issuance.dossiers import Actor, Dossier, Event, Status, StatusChange
from issuance.fees import Fee
from issuance.forms import FormNo, RequesterKind

Cursor = tuple[datetime | date, uuid.UUID]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of ``issuance.dossier_events``: the status reached, when, by whom (``officer``: the agency)."""

    status: Status
    at: datetime
    actor: Actor
    reason: str = ""
    officer: str = ""


@dataclass(frozen=True, slots=True)
class NewDossier:
    """A dossier to open, with the history it starts with (SUBMITTED, VERIFYING and maybe APPROVED)."""

    id: uuid.UUID
    tracking_number: str
    request_id: uuid.UUID
    requester: RequesterKind
    requester_ref: str  # the asking citizen's audit pseudonym, or the agency's client id
    client_id: str  # the agency's client id ("" for a citizen)
    authorisation_ref: str
    legal_basis: str
    id_number: str  # the subject's
    subject: str  # the subject's audit pseudonym
    form: FormNo
    purpose: str
    answers: Mapping[str, Any]
    fields: tuple[FilledField, ...]
    fee: Fee
    working_days: int
    deadline: date
    received_at: datetime
    history: tuple[StoredEvent, ...]
    clean_record: bool
    holder_jwk: Mapping[str, Any] | None
    fee_groups: tuple[str, ...] = ()  # issuance.fees.FeeGroup names that reduced or waived the fee


@dataclass(frozen=True, slots=True)
class StoredDossier:
    id: uuid.UUID
    tracking_number: str
    request_id: uuid.UUID
    requester: RequesterKind
    requester_ref: str
    client_id: str
    authorisation_ref: str
    legal_basis: str
    id_number: str
    subject: str
    form: FormNo
    purpose: str
    answers: Mapping[str, Any]
    fields: tuple[FilledField, ...]
    fee: Fee
    working_days: int
    deadline: date
    received_at: datetime
    status: Status
    status_changed_at: datetime
    rejection_reason: str
    clean_record: bool | None
    history: tuple[StoredEvent, ...]
    certificate_id: str | None = None
    credential_status: str | None = None
    vault_document_id: str | None = None
    fee_groups: tuple[str, ...] = ()

    @property
    def dossier(self) -> Dossier:
        """The domain's dossier (status machine, ``overdue``)."""
        changes = tuple(StatusChange(e.status, e.at, e.actor, e.reason) for e in self.history)
        return Dossier(
            self.tracking_number,
            self.id_number,
            self.form,
            self.fee,
            self.received_at,
            self.working_days,
            self.deadline,
            changes,
        )

    def seen_by(self, ref: str) -> bool:
        """Is ``ref`` (a citizen's pseudonym) the requester or the subject of this dossier?"""
        return self.requester in (RequesterKind.SELF, RequesterKind.REPRESENTATIVE) and ref in (
            self.requester_ref,
            self.subject,
        )


@dataclass(frozen=True, slots=True)
class StoredCredential:
    status: Status
    credential: str | None
    qr_text: str | None
    credential_status: str | None
    agency_pdf: bytes | None


@dataclass(frozen=True, slots=True)
class IssuerKey:
    kid: str
    use: str  # 'credential' or 'document'
    public_jwk: Mapping[str, Any]
    chain_pem: str


TransitionAudit = Callable[[StoredDossier, Status], AuditEvent]
"""The audit row of a change of a stored dossier to a status (built by the service, inserted by the store)."""


class DossierStore(Protocol):
    async def next_sequence(self) -> int:
        """The next tracking-number sequence (1..999999, cycling)."""

    async def find(self, requester_ref: str, request_id: uuid.UUID) -> StoredDossier | None:
        """The dossier this requester opened with this request id, if any (idempotent Apply)."""

    async def create(self, new: NewDossier, audit: list[AuditEvent]) -> tuple[StoredDossier, bool]:
        """Insert the dossier, its history and ``audit`` in one transaction, unless this requester already opened
        one with this request id: then that one, unchanged (``False``)."""

    async def get(self, dossier_id: uuid.UUID) -> StoredDossier | None: ...

    async def mine(self, ref: str, limit: int, after: Cursor | None) -> list[StoredDossier]:
        """A citizen's dossiers (as requester or subject), newest first."""

    async def by_status(
        self, status: Status, overdue_before: date | None, limit: int, after: Cursor | None
    ) -> list[StoredDossier]:
        """Dossiers in ``status`` (with a deadline before ``overdue_before`` when given), oldest deadline first."""

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
        """Lock the row, ``issuance.dossiers.transition`` on the stored status (its errors pass unchanged), write
        the new status, its dossier_events row and its audit row in one transaction (APPROVED: due to issue)."""

    async def credential(self, dossier_id: uuid.UUID) -> StoredCredential | None: ...

    async def issuer_keys(self) -> list[IssuerKey]: ...


# ---------------------------------------------------------------------------------------------------------------
# JSON of the stored columns.


def answers_json(answers: Answers) -> dict[str, Any]:
    """The ``answers`` column: the six answers as received (``Answers(**value)`` rebuilds them)."""
    return {
        "form": answers.form,
        "purpose": answers.purpose,
        "copies": answers.copies,
        "delivery": answers.delivery,
        "email": answers.email,
        "ban_certification": answers.ban_certification,
        "postal_address": answers.postal_address,
    }


def fields_json(fields: tuple[FilledField, ...]) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "label_vi": f.label_vi, "value": f.value, "source": f.source, "recorded": f.recorded}
        for f in fields
    ]


def fields_from_json(value: list[dict[str, Any]]) -> tuple[FilledField, ...]:
    return tuple(
        FilledField(f["name"], f["label_vi"], f["value"], f["source"], bool(f.get("recorded", True))) for f in value
    )


def fee_json(fee: Fee, groups: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``fee`` column: the ``issuance.fees.Fee`` and the groups that reduced or waived it."""
    return {
        "groups": list(groups),
        "base_vnd": fee.base_vnd,
        "reduction_vnd": fee.reduction_vnd,
        "extra_copies_vnd": fee.extra_copies_vnd,
        "total_vnd": fee.total_vnd,
        "reason": fee.reason,
        "basis": fee.basis,
    }


def fee_from_json(value: Mapping[str, Any]) -> Fee:
    return Fee(
        int(value["base_vnd"]),
        int(value["reduction_vnd"]),
        int(value["extra_copies_vnd"]),
        int(value["total_vnd"]),
        str(value["reason"]),
        str(value.get("basis", "")),
    )


AGENCY_PURPOSE = "AGENCY_REQUEST"


def application_of(stored: StoredDossier) -> Application:
    """The application as filed: the stored answers and the 23 fields as submitted (nothing refilled).

    A citizen's dossier carries the six answers (``answers_json``); an agency's carries ``form``, the purpose in
    its own words and the ban always certified (``issuance.service``)."""
    answers = stored.answers
    code = str(answers.get("purpose", ""))
    purpose = PURPOSES.get(code) or RequestPurpose(AGENCY_PURPOSE, stored.purpose, frozenset({stored.form}))
    ban = answers.get("ban_certification")
    return Application(
        form=stored.form,
        purpose=purpose,
        copies=int(answers.get("copies", 1)),
        delivery=Delivery(str(answers.get("delivery", Delivery.ELECTRONIC.value))),
        postal_address=str(answers.get("postal_address", "")),
        ban_certification=bool(ban) or stored.form is FormNo.TWO,
        email=str(answers.get("email", "")),
        fields=stored.fields,
    )
